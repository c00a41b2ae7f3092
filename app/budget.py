"""One cost budget for everything a visitor holds: runs, sweeps and lesson experiments.

    ticket = budget.reserve(address, run_cost(cfg), "this run")   # or raises Busy
    ...
    budget.release(ticket)                                        # when the run ends

Costs are model_server.costs estimates, made from the config before anything is built.
Two quantities are budgeted, per client address and for the whole process:
* bytes held (serving.max_bytes_per_address, serving.max_bytes): runs, sweeps and the
  experiments running now;
* multiply-adds per training step of the address's runs (serving.max_step_macs_per_address):
  how much CPU one address's runs ask for with each step; the scheduler then shares the
  CPU fairly (app/turns.py), so this bounds how far one address can dilute it.
One-off work (an experiment, a sweep's steps) is also bounded per event
(serving.max_job_bytes, serving.max_job_macs) and runs through the scheduler.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from model_server.costs import Cost

MB = 1 << 20


class OverBudget(Exception):
    """The work would pass a budget; the message names the budget and both amounts.
    server_wide: the process's budget (else the client address's share of it)."""

    def __init__(self, message: str, server_wide: bool = False):
        super().__init__(message)
        self.server_wide = server_wide


@dataclass
class Ticket:
    address: str
    cost: Cost
    step_macs: bool   # counts toward the address's per-step multiply-adds (a run)


class Budget:
    def __init__(self, serving):
        self.serving = serving
        self.lock = threading.Lock()
        self.by_address: dict[str, list[float]] = {}   # address -> [bytes, step macs]
        self.bytes = 0.0

    def reserve(self, address: str, cost: Cost, what: str, step_macs: bool = False) -> Ticket:
        s = self.serving
        with self.lock:
            held = self.by_address.get(address, [0.0, 0.0])
            if held[0] + cost.bytes > s.max_bytes_per_address:
                raise OverBudget(
                    f"{what} would hold ~{cost.bytes / MB:.0f} MB, and your address already holds "
                    f"~{held[0] / MB:.0f} MB of the {s.max_bytes_per_address / MB:.0f} MB one address may "
                    "(DP_MAX_BYTES_PER_ADDRESS): close a run or make it smaller")
            if step_macs and held[1] + cost.macs > s.max_step_macs_per_address:
                raise OverBudget(
                    f"{what} needs {cost.macs / 1e6:,.0f} M multiply-adds per step, and your address's runs "
                    f"already {held[1] / 1e6:,.0f} M of the {s.max_step_macs_per_address / 1e6:,.0f} M allowed "
                    "(DP_MAX_STEP_MACS_PER_ADDRESS): close a run or make it smaller")
            if self.bytes + cost.bytes > s.max_bytes:
                raise OverBudget(f"server busy: its memory budget ({s.max_bytes / MB:.0f} MB, DP_MAX_BYTES) "
                                 "is taken; try again in a minute", server_wide=True)
            held = self.by_address.setdefault(address, [0.0, 0.0])
            held[0] += cost.bytes
            held[1] += cost.macs if step_macs else 0.0
            self.bytes += cost.bytes
            return Ticket(address, cost, step_macs)

    def held(self, address: str) -> float:
        """Bytes reserved by this client address."""
        with self.lock:
            return self.by_address.get(address, [0.0, 0.0])[0]

    def free(self) -> float:
        """Bytes of the process budget not reserved."""
        with self.lock:
            return self.serving.max_bytes - self.bytes

    def release(self, ticket: Ticket | None) -> None:
        if ticket is None:
            return
        with self.lock:
            held = self.by_address.get(ticket.address)
            if held is None:
                return
            held[0] -= ticket.cost.bytes
            held[1] -= ticket.cost.macs if ticket.step_macs else 0.0
            self.bytes -= ticket.cost.bytes
            if held[0] <= 1 and held[1] <= 1:
                del self.by_address[ticket.address]

    def check_job(self, cost: Cost) -> str | None:
        """Why one experiment or sweep event is too big by itself, or None."""
        s = self.serving
        if cost.bytes > s.max_job_bytes:
            return (f"it would hold ~{cost.bytes / MB:,.0f} MB at once, and one may hold "
                    f"{s.max_job_bytes / MB:,.0f} MB (DP_MAX_JOB_BYTES)")
        if cost.macs > s.max_job_macs:
            return (f"it would take {cost.macs / 1e9:,.1f} G multiply-adds, and one may take "
                    f"{s.max_job_macs / 1e9:,.1f} G (DP_MAX_JOB_MACS)")
        return None
