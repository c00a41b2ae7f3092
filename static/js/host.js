// The host page side of an embed (the playground's and a lesson's alike): messages out to
// window.parent, commands in from it, under one set of origin rules (docs/embedding.md).
//
// Out: {type: 'dropout-playground:<name>', id, ...}, to the parent's origin when it is
// allowed, to '*' when the server allows any origin, else to nobody (except the errors
// that answer the parent's own messages). In: {type: 'dropout-playground:<command>',
// request?, ...} from window.parent at an allowed origin, checked before anything runs.
export const PREFIX = 'dropout-playground:';
export const VERSION = 2;  // 2: play takes until; state, result carry eval
const MAX_MESSAGE_CHARS = 4096;
const COMMON = ['type', 'request'];

export function entry(field, message, allowed = '', received = null) {
  return { field, message, allowed, received: short(received) };
}

export function short(v) {
  if (v === undefined) return null;
  let text;
  try { text = JSON.stringify(v); } catch (e) { text = String(v); }
  if (text === undefined) return String(v);
  return text.length <= 80 ? v : `${text.slice(0, 80)}... (${text.length} chars)`;
}

// The embed's settings from its JSON block (app/embed.py).
export function readConfig() {
  const block = document.getElementById('dp-embed-config');
  const config = block ? JSON.parse(block.textContent) : {};
  return { origins: [], hide: [], lock: [], problems: [], ...config };
}

export class HostChannel {
  // commands: name -> the fields it takes besides type and request;
  // check(command, msg): an error entry or null, after the common checks;
  // run(command, msg): a promise of {ok, ...} (the answer's fields)
  constructor(config, { commands, check = () => null, run }) {
    this.id = config.id || null;
    this.allowed = config.origins || [];
    this.any = this.allowed.includes('*');
    this.framed = window.parent !== window;
    this.target = this.pickTarget();
    this.commands = commands;
    this.check = check;
    this.runCommand = run;
    this.height = 0;
    window.addEventListener('message', e => this.receive(e));
  }

  allows(origin) {
    return this.any || origin === location.origin || this.allowed.includes(origin);
  }

  // Where reports go: '*' if any origin may embed us; else the parent's origin when it is
  // allowed (known from ancestorOrigins or the referrer), else the only listed origin.
  pickTarget() {
    if (!this.framed) return null;
    if (this.any) return '*';
    let parent = location.ancestorOrigins && location.ancestorOrigins.length ? location.ancestorOrigins[0] : null;
    if (!parent && document.referrer) { try { parent = new URL(document.referrer).origin; } catch (e) { /* none */ } }
    if (parent) return this.allows(parent) ? parent : null;
    const listed = this.allowed.filter(o => o !== '*');
    return listed.length === 1 ? listed[0] : null;
  }

  envelope(name, data) {
    return { type: PREFIX + name, id: this.id, ...data };
  }

  post(name, data = {}) {
    if (this.target) window.parent.postMessage(this.envelope(name, data), this.target);
  }

  // The content's height, posted whenever it changes: the host sizes the iframe to it.
  watchHeight(el) {
    const report = () => {
      const height = Math.ceil(el.getBoundingClientRect().height);
      if (height === this.height) return;
      this.height = height;
      this.post('height', { height });
    };
    new ResizeObserver(report).observe(el);
    report();
  }

  async receive(e) {
    const msg = e.data;
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string' || !msg.type.startsWith(PREFIX)) return;  // not ours
    const request = typeof msg.request === 'string' ? msg.request.slice(0, 64) : Number.isFinite(msg.request) ? msg.request : null;
    const reply = (name, data) => {
      if (e.source && typeof e.source.postMessage === 'function') {
        e.source.postMessage(this.envelope(name, { request, ...data }), e.origin && e.origin !== 'null' ? e.origin : '*');
      }
    };
    const problem = this.validate(msg, e);
    if (problem) {
      reply('error', { error: problem, errors: [problem] });
      return;
    }
    if (!this.target && this.framed) this.target = e.origin;  // learned: reports go to this host from now on
    const command = msg.type.slice(PREFIX.length);
    try {
      const result = await this.runCommand(command, msg);
      reply(result.ok ? 'result' : 'error', { command, ...result });
    } catch (err) {
      const error = entry('command', `${command} failed: ${err && err.message ? err.message : err}`);
      reply('error', { command, error, errors: [error] });
    }
  }

  // Who may send, which types, which fields; then the embed's own checks. Returns an
  // error entry or null.
  validate(msg, e) {
    if (!this.framed || e.source !== window.parent) {
      return entry('source', 'commands are taken from the page that embeds this playground only', 'window.parent', null);
    }
    if (!this.allows(e.origin)) {
      return entry('origin', `messages from ${e.origin} are not accepted: this playground takes commands only from the origins its server allows (DP_EMBED_ORIGINS)`,
        'an origin listed in DP_EMBED_ORIGINS', e.origin);
    }
    let size = Infinity;
    try { size = JSON.stringify(msg).length; } catch (err) { /* cyclic or not serializable */ }
    if (size > MAX_MESSAGE_CHARS) return entry('message', `a message has to be at most ${MAX_MESSAGE_CHARS} characters of JSON, but got ${size}`, `<= ${MAX_MESSAGE_CHARS}`, size);
    const command = msg.type.slice(PREFIX.length);
    if (!Object.hasOwn(this.commands, command)) {
      return entry('type', `unknown command ${command}`, Object.keys(this.commands).map(c => PREFIX + c).join(', '), msg.type);
    }
    if ('request' in msg && !(typeof msg.request === 'string' || Number.isFinite(msg.request))) {
      return entry('request', 'request has to be a string or a number (it is echoed in the answer)', 'string or number', msg.request);
    }
    const fields = [...COMMON, ...this.commands[command]];
    for (const k of Object.keys(msg)) {
      if (!fields.includes(k)) return entry(k, `unknown field ${k} for ${command}`, fields.join(', '), msg[k]);
    }
    return this.check(command, msg);
  }
}
