// Export: the run as runnable PyTorch code, its metrics (CSV, JSON), its weights
// (safetensors) from the server's 'export' event, and the panels as PNG from Plotly.
// Each becomes a file download (a Blob and a temporary <a download>).

const PANELS = [  // data-role of the plot, file name part
  ['network', 'network'], ['plane', 'boundary'], ['losses', 'losses'],
];

export class Exporter {
  constructor(playground) {
    this.pg = playground;
    this.box = playground.root.querySelector('[data-role=export]');
    if (!this.box) return;
    this.status = this.box.querySelector('[data-role=export-status]');
    for (const button of this.box.querySelectorAll('[data-export]')) {
      button.addEventListener('click', async () => {
        button.disabled = true;
        try { await this.export(button.dataset.export); } finally { button.disabled = false; }
      });
    }
  }

  say(text) { if (this.status) this.status.textContent = text; }

  // what: 'code' | 'metrics_csv' | 'metrics_json' | 'weights' | 'png'
  async export(what) {
    if (what === 'png') return this.plots();
    this.say('Preparing…');
    const ack = await this.pg.run.call('export', { what });
    if (!ack.ok) { this.say(''); this.pg.serverErrors(ack); return ack; }
    const size = ack.data.byteLength ?? ack.data.length;
    download(new Blob([ack.data], { type: ack.mime }), ack.filename);
    this.say(`Saved ${ack.filename} (${size.toLocaleString('en')} ${ack.data.byteLength === undefined ? 'characters' : 'bytes'}).`);
    return ack;
  }

  // Every visible panel as a PNG at twice its on-screen size, each file named by the
  // step it shows: during a replay the network's mask is of the replayed step and its
  // edges of the latest, the boundary of the latest weights (a thinned one: the
  // replayed mask on them) and the loss chart of the latest step.
  async plots() {
    const steps = this.panelSteps();
    const names = [];
    for (const [role, name] of PANELS) {
      const el = this.pg.root.querySelector(`[data-role=${role}]`);
      const layers = !el ? [] : el.data ? [el] : Array.from(el.querySelectorAll('.js-plotly-plot'));
      if (!layers.length || !el.offsetWidth) continue;  // hidden, or not drawn yet
      const url = await panelImage(layers, el.offsetWidth, el.offsetHeight);
      const filename = `dropout-${name}-${steps[name]}.png`;
      download(url, filename);
      names.push(filename);
    }
    this.say(names.length ? `Saved ${names.join(', ')}.` : 'Nothing drawn yet.');
    return { ok: true, files: names };
  }

  // Per panel, the step(s) it shows as a file name part: 'step120', or, where a panel
  // shows one step's mask on another step's weights, 'mask-step80-weights-step120'.
  panelSteps() {
    const h = this.pg.drawn ? this.pg.drawn.header : null;
    const latest = h && h.replay ? this.pg.timeline.latest : h ? h.step : 0;
    const part = ({ mask, weights }) => (mask === null || mask === undefined || mask === weights
      ? `step${weights}` : `mask-step${mask}-weights-step${weights}`);
    const shown = this.pg.plane && this.pg.plane.shown && this.pg.plane.shown.steps;
    return {
      network: part({ mask: h ? h.step : 0, weights: latest }),
      // the digits' panel shows the example of the step on show; the boundary says its own
      boundary: this.pg.plane === this.pg.images ? `step${h ? h.step : 0}` : part(shown || { weights: latest }),
      losses: `step${latest}`,
    };
  }
}

// A panel as one PNG data URL. A panel may be several plots stacked with the same axes
// (the boundary: heatmap below, points above): each is rendered, then drawn in order.
async function panelImage(layers, width, height) {
  const opts = { format: 'png', width, height, scale: 2 };
  const urls = await Promise.all(layers.map(gd => window.Plotly.toImage(gd, opts)));
  if (urls.length === 1) return urls[0];
  const canvas = document.createElement('canvas');
  canvas.width = 2 * width; canvas.height = 2 * height;
  const ctx = canvas.getContext('2d');
  for (const url of urls) {
    const img = new Image();
    img.src = url;
    await img.decode();
    ctx.drawImage(img, 0, 0);
  }
  return canvas.toDataURL('image/png');
}

// Save a Blob (or a data: URL) as a file.
export function download(data, filename) {
  const url = data instanceof Blob ? URL.createObjectURL(data) : data;
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  if (data instanceof Blob) setTimeout(() => URL.revokeObjectURL(url), 30000);
}
