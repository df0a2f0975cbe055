#!/usr/bin/env python3
"""The guest's power transitions under the real hypervisor (docs/kvmi-hv.md,
"Power transitions").

Bochs (tigerlake, 2 CPUs, an e1000 on slirp) runs test/linux/acpitab.efi
before hv.efi, so that the hypervisor finds the FADT and the DSDT's \\_S5 as
on a real machine, then hv.efi in the product's configuration with
`connect = 10.0.2.2:PORT`, then the agent's `power` probe
(test/guest/probe_power.c), which asks the machine to power off, reset or
sleep once this introspector has said go.  Both sides are asserted: here the
events (KVMI_EVENT_UNHOOK or none) and the session's end, in the serial log
the hypervisor's account (unhook, its timing on the TSC, the close, the key
scrubbed, the action proceeding) and the machine's (powered off, booted
again after a reset, awake after a refused sleep).

    python3 test/emu/power_scenarios.py          # every scenario (one Bochs at a time)
    python3 test/emu/power_scenarios.py --list
"""
from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "client", "python"))
import kvmi_scenarios as ks  # noqa: E402
import linux_run  # noqa: E402
import net_run  # noqa: E402
import run  # noqa: E402
from kvmi import client as kc  # noqa: E402
from kvmi import wire as w  # noqa: E402

POWER_GO = 0x52574F502D4F4721  # "!GO-POWR", test/guest/probe_power.c
HV = r"hv: \[cpu\d+\] "
UNHOOK_TIMEOUT_MS = 2000
ESP = ["--file", linux_run.ACPITAB, "--pre", "acpitab.efi"]


def is_unhook(ev: w.Event) -> bool:
    return ev.event == w.KVMI_EVENT_UNHOOK


def hv_line(r: net_run.Run, pat: str, secs: float = 120) -> re.Match:
    return ks.wait_serial(r, HV + pat, secs, hv=True)


def attach(r: net_run.Run, unhook: bool, word3: int = 0) -> tuple[kc.Domain, int]:
    """The session, UNHOOK enabled or not, and the go word written (with word3,
    the probe's fourth mailbox word); returns the mailbox's address."""
    r.listener.settimeout(300)
    conn, peer = r.listener.accept()
    conn.settimeout(None)
    dom = kc._open_domain(conn, peer, None, check_version=True)
    if unhook:
        dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    m = re.search(r"power: PM1a_CNT (0x[0-9a-f]+) PM1a_STS (0x[0-9a-f]+) .*SLP_TYPa (\d+)",
                  r.text())
    ks.check(m is not None, "no 'power: PM1a_CNT' line from the loader (no FADT found?)")
    cnt, sts, typ = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3))
    mb = ks.wait_serial(r, r"AGENT: power: mailbox at 0x([0-9a-f]+)", 300)
    addr = int(mb.group(1), 16)
    dom.write_physical(addr + 8, (cnt | sts << 16 | typ << 32).to_bytes(8, "little"))
    dom.write_physical(addr + 24, word3.to_bytes(8, "little"))
    dom.write_physical(addr, POWER_GO.to_bytes(8, "little"))
    r.notes.append(f"PM1a_CNT {cnt:#x}, PM1a_STS {sts:#x}, \\_S5 SLP_TYPa {typ}; go written")
    return dom, addr


def wait_end(dom: kc.Domain, secs: float) -> list[w.Event]:
    """Every event until the hypervisor ends the session; raises on a timeout."""
    seen = dom.events_until_closed(secs)
    if seen is None:
        raise ks.Fail(f"the session did not end within {secs:.0f} s")
    return seen


def guarded(fn):
    def host(r: net_run.Run) -> None:
        try:
            fn(r)
        except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
            raise ks.Fail(f"{e.__class__.__name__}: {e}") from e
    return host


def unhook_then(action: str, close: bool, asks: str = "", after: str = "", word3: int = 0):
    """UNHOOK enabled; the tool closes when it arrives (close) or never.
    asks: the hypervisor's line for the request (default: the guest asks for
    action); after: its line once the action goes on (default: proceeds)."""
    asks = asks or r"vCPU \d+: the guest asks for " + action
    after = after or r"vCPU \d+: " + action + r" proceeds"

    @guarded
    def host(r: net_run.Run) -> None:
        dom, _ = attach(r, unhook=True, word3=word3)
        ev = dom.wait_event(timeout=300, match=is_unhook)
        ks.check(ev is not None, "no KVMI_EVENT_UNHOOK before the " + action)
        # A vCPU held for the unhook still answers its own commands.
        regs = dom.get_registers(ev.vcpu)
        r.notes.append(f"vCPU {ev.vcpu} answers GET_REGISTERS while held (RIP {regs.regs.rip:#x})")
        hv_line(r, asks)
        r.notes.append(f"KVMI_EVENT_UNHOOK before the {action}")
        if close:
            dom.close()
            m = hv_line(r, r"kvmi: unhook done: introspector closed after (\d+) ms")
            r.notes.append(f"closed at once; the hypervisor waited {m.group(1)} ms")
        else:
            wait_end(dom, 120)  # the hypervisor ends it
            m = hv_line(r, r"kvmi: unhook timed out: going on after (\d+) ms")
            waited = int(m.group(1))
            ks.check(UNHOOK_TIMEOUT_MS <= waited < UNHOOK_TIMEOUT_MS + 1000,
                     f"the hypervisor waited {waited} ms for a tool that never closed "
                     f"(unhook_timeout_ms = {UNHOOK_TIMEOUT_MS})")
            hv_line(r, r"kvmi: " + action + r": closing the introspection session "
                    r"\(unhook timed out\)")
            r.notes.append(f"tool never closed: the hypervisor waited {waited} ms on its TSC, "
                           "then closed the session itself")
        hv_line(r, r"kvmi: " + action + r": the key is scrubbed from the region")
        r.notes.append(hv_line(r, after).group(0).split("] ", 1)[-1])
        if action == "reset":
            r.notes.append("Bochs: " + machine_reset(r))
    return host


# Bochs's own log: a reset of CPU 0 after power-on (its first one is at time 0).

def machine_reset(r: net_run.Run, secs: float = 120) -> str:
    """Waits until Bochs's log shows the machine reset; returns that line."""
    path = os.path.join(r.work, "run", "bochs.log")
    line = run.bochs_reset_line(path, secs)
    if line is not None:
        return line
    raise ks.Fail(f"Bochs's log shows no reset within {secs:.0f} s of the hypervisor's")


@guarded
def host_no_unhook(r: net_run.Run) -> None:
    dom, _ = attach(r, unhook=False)
    events = wait_end(dom, 120)
    ks.check(not any(is_unhook(e) for e in events), "KVMI_EVENT_UNHOOK although not enabled")
    hv_line(r, r"kvmi: unhook requested by vCPU \d+: the introspector did not enable "
            r"KVMI_EVENT_UNHOOK")
    hv_line(r, r"kvmi: S5 power-off: closing the introspection session \(UNHOOK not enabled\)")
    hv_line(r, r"vCPU \d+: S5 power-off proceeds")
    r.notes.append("UNHOOK not enabled: no event, the session closed, the power-off went on")


@guarded
def host_reset_mem(r: net_run.Run) -> None:
    """The FADT reset register in memory (acpitab.efi resetmem): a store of
    another value is no reset; the reset value is, after UNHOOK and the close."""
    m = ks.wait_serial(r, r"ACPITAB: reset register in memory at 0x([0-9a-fA-F]+) \(value 6\)", 60)
    at = int(m.group(1), 16)
    page = hv_line(r, r"EPT: the FADT reset register's page (0x[0-9a-f]+) is read-only")
    ks.check(int(page.group(1), 16) == at & ~0xFFF,
             f"the hypervisor protects page {page.group(1)}, the register is at {at:#x}")
    dom, _ = attach(r, unhook=True, word3=at)
    ev = dom.wait_event(timeout=300, match=is_unhook)
    ks.check(ev is not None, "no KVMI_EVENT_UNHOOK for the reset value's store")
    text = r.text()
    ks.check(re.search(r"AGENT: power: 0x11 stored at the reset register 0x[0-9a-f]+, reads "
                       r"0x11", text) is not None, "UNHOOK came before the agent's first store")
    ks.check(text.count("the guest asks for reset") == 1,
             "the hypervisor took the store of 0x11 for a reset")
    hv_line(r, rf"vCPU \d+: the guest asks for reset \(memory {at:#x} <- 0x6, the FADT reset "
            r"register\)")
    dom.close()
    hv_line(r, r"kvmi: unhook done: introspector closed after \d+ ms")
    hv_line(r, r"kvmi: reset: the key is scrubbed from the region")
    hv_line(r, r"vCPU \d+: reset proceeds")
    ks.wait_serial(r, r"AGENT: power: reset value stored, reads 0x6", 300)
    r.notes.append(f"reset register at {at:#x} (page read-only in the EPT): 0x11 stored, no "
                   "reset; 6 stored: UNHOOK, the close, the key scrubbed, the store landed")


@guarded
def host_sleep(r: net_run.Run) -> None:
    dom, mailbox = attach(r, unhook=True)
    ks.wait_serial(r, r"AGENT: power: WAK_STS cleared", 300)
    hv_line(r, r"vCPU \d+: the guest's sleep of an undeclared type is refused \(on_sleep = "
            r"refuse\)")
    # A reply comes after every event sent before it: none may be an UNHOOK.
    ks.check(dom.get_version() == 1, "GET_VERSION after the refused sleep")
    ks.check(not any(is_unhook(e) for e in dom.queued_events()),
             "KVMI_EVENT_UNHOOK for a sleep that was refused")
    r.notes.append("sleep refused: no UNHOOK, the agent saw WAK_STS and ran on, the session "
                   "still answers")
    dom.write_physical(mailbox + 16, POWER_GO.to_bytes(8, "little"))  # the agent ends
    dom.close()


def scenario(name, doc, host, power, conf_extra="", stop=False, expect=(), allow=(), esp=ESP,
             **kw):
    """allow: patterns of the usual forbidden list this scenario expects (the
    hypervisor's own "triple fault" line when the guest makes one)."""
    return net_run.Scenario(
        name=name, doc=doc,
        conf=f"connect = 10.0.2.2:{{port}}\nreconnect_ms = 500\nname = {name}\n" + conf_extra,
        debug=False, guest_ports=[], host=host, cpus=2,
        agent_args=f"cpus=2 power={power}", timeout=600, esp_args=esp, grace=180,
        ready=[r"kvmi: engine up for 2 vCPU\(s\)"], stop_after_host=stop,
        expect=[HV + r"power: PM1a_CNT 0x[0-9a-f]+", r"kvmi: engine up for 2 vCPU\(s\)",
                *expect],
        forbid=[f for f in ks.FORBID if f not in allow] + [
            r"guest shutdown through port 0x8900",
            r"the platform did not reset", r"a real wake would run the OS outside VMX"], **kw)


STUB_GO = 0x4F472D454B41572D  # "-WAKE-GO", test/guest/probe_power_s3.c
S3_SLP_TYP = 1  # acpitab.efi's \_S3 (SLP_TYP 1, as a PIIX4 board declares it)
S4_SLP_TYP = 2  # acpitab.efi's \_S4


@guarded
def host_s3_race(r: net_run.Run) -> None:
    """on_sleep = resume (s3_simulate): the agent's AP rewrites the FACS waking
    vector in a loop while the BSP asks for S3; the FACS must hold the
    hypervisor's vector at the power loss, and the guest's vector must run
    only after every CPU is in VMX again; a new session after the wake."""
    m = hv_line(r, r"power: on_sleep = resume: wake trampoline page at (0x[0-9a-f]+), FACS at "
                   r"(0x[0-9a-f]+)")
    page, facs = int(m.group(1), 16), int(m.group(2), 16)
    dom, _ = attach(r, unhook=True, word3=facs | S3_SLP_TYP << 40)
    a = ks.wait_serial(r, r"AGENT: power: S3 race: good vector (0x[0-9a-f]+), rogue vector "
                          r"(0x[0-9a-f]+)", 300)
    stubs = [int(a.group(1), 16), int(a.group(2), 16)]
    ev = dom.wait_event(timeout=300, match=is_unhook)
    ks.check(ev is not None, "no KVMI_EVENT_UNHOOK before the S3 sleep")
    dom.close()
    hv_line(r, r"kvmi: unhook done: introspector closed after \d+ ms")
    saved = hv_line(r, r"vCPU \d+: S3: the OS's waking vector real mode (0x[0-9a-f]+):0x0 is saved")
    ks.check(int(saved.group(1), 16) << 4 in stubs,
             f"the saved vector {saved.group(1)}:0 is neither of the agent's ({stubs})")
    held = hv_line(r, r"S3 \(simulated\): the FACS holds the hypervisor's waking vector "
                      r"(0x[0-9a-f]+) at the power loss")
    ks.check(int(held.group(1), 16) == page, f"the FACS held {held.group(1)}, not {page:#x}")
    hv_line(r, r"S3 wake: every CPU is in VMX again; the OS resumes at its waking vector")
    text = r.text()
    woke = ks.wait_serial(r, r"AGENT-WAKE: the (OS's waking vector|rogue AP's vector) runs", 300)
    ks.check(text.find("every CPU is in VMX again") < r.text().find("AGENT-WAKE:"),
             "the guest's waking vector ran before the hypervisor was back")
    r.listener.settimeout(300)
    conn, peer = r.listener.accept()  # the hypervisor dials again after the wake
    conn.settimeout(None)
    dom = kc._open_domain(conn, peer, None, check_version=True)
    ks.check(dom.get_version() == 1, "GET_VERSION on the session after the wake")
    dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    for at in stubs:
        dom.write_physical(at + 0xF00, STUB_GO.to_bytes(8, "little"))
    ev = dom.wait_event(timeout=300, match=is_unhook)
    ks.check(ev is not None, "no KVMI_EVENT_UNHOOK for the power-off after the wake")
    dom.close()
    hv_line(r, r"vCPU \d+: S5 power-off proceeds")
    r.notes.append(f"S3 with an AP rewriting the FACS in a loop: the FACS held the hypervisor's "
                   f"vector {page:#x} at the power loss, {woke.group(1)} ran after every CPU was "
                   f"in VMX again, a new session, then S5 with UNHOOK")


SCENARIOS = [
    scenario("bochs-power-s5", "ACPI S5 power-off: UNHOOK, the tool closes, the machine powers "
             "off", unhook_then("S5 power-off", close=True), 1,
             expect=[r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-s5-stubborn", f"ACPI S5 with a tool that never closes: the hypervisor "
             f"waits unhook_timeout_ms ({UNHOOK_TIMEOUT_MS}) on its TSC, closes the session, the "
             "machine powers off", unhook_then("S5 power-off", close=False), 1,
             conf_extra=f"unhook_timeout_ms = {UNHOOK_TIMEOUT_MS}\n",
             expect=[r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-s5-no-unhook", "ACPI S5 without UNHOOK enabled: no event, the session "
             "is closed and the power-off goes on at once", host_no_unhook, 1,
             expect=[r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-reset-cf9", "reset through 0xcf9: UNHOOK, the tool closes, the reset "
             "is issued (the firmware starts again)", unhook_then("reset", close=True), 2,
             stop=True, expect=[r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-reset-kbd", "reset through the keyboard controller (0x64 <- 0xfe): "
             "UNHOOK, then the reset", unhook_then("reset", close=True), 3, stop=True,
             expect=[r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-reset-92", "fast reset through port 0x92: UNHOOK, then the reset",
             unhook_then("reset", close=True), 4, stop=True, expect=[r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-triple", "a triple fault (null IDT, UD2): the shutdown becomes the "
             "platform reset: UNHOOK (the held vCPU still answers), the tool closes, the key is "
             "scrubbed, the hypervisor resets through the FADT reset register",
             unhook_then("reset", close=True,
                         asks=r"vCPU \d+: triple fault at RIP 0x[0-9a-f]+: a shutdown",
                         after=r"vCPU \d+: platform reset through the FADT reset register "
                         r"\(port 0xcf9 <- 0x6\)"), 6,
             stop=True, allow=[r"triple fault"],
             expect=[r"HVTEST-RESULT: PASS", HV + r"vCPU 0: triple fault at RIP"]),
    scenario("bochs-power-reset-mem", "the FADT reset register in memory space (acpitab.efi "
             "resetmem): its page read-only in the EPT; another value stored lands, no reset; "
             "the reset value: UNHOOK, the close, the key scrubbed, the store performed (Bochs "
             "has no register there: the machine runs on)", host_reset_mem, 7,
             esp=["--file", linux_run.ACPITAB, "--pre", "acpitab.efi resetmem"],
             expect=[r"AGENT: power: reset value stored, reads 0x6", r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-s3-race", "S3 with on_sleep = resume (s3_simulate) while an AP "
             "rewrites the FACS waking vector in a loop: UNHOOK, the FACS holds the "
             "hypervisor's vector at the power loss, the guest's vector runs only after every "
             "CPU is back in VMX, a new session; then S5", host_s3_race, 8,
             conf_extra="on_sleep = resume\ns3_simulate = yes\n",
             expect=[r"HVTEST-RESULT: PASS", r"AGENT-WAKE: "]),
    scenario("bochs-power-s4", "S4 (hibernation) with on_sleep = resume: it goes through as a "
             "power-off (its resume is a boot, which starts hv.efi first): UNHOOK, the close, "
             "the key scrubbed, the write made (Bochs ignores SLP_TYP 2: the agent runs on)",
             unhook_then("S4 hibernation", close=True, word3=S4_SLP_TYP << 40), 9,
             conf_extra="on_sleep = resume\n",
             expect=[r"AGENT: power: still running after S4", r"HVTEST-RESULT: PASS"]),
    scenario("bochs-power-sleep-refused", "a sleep request with on_sleep = refuse (the default): "
             "dropped, no UNHOOK, the OS reads WAK_STS and stays awake and watched", host_sleep, 5,
             expect=[r"AGENT: power: WAK_STS cleared", r"HVTEST-RESULT: PASS"]),
]


def main() -> int:
    return net_run.scenario_main(__doc__, "test-emu-power", SCENARIOS, [os.path.join(net_run.BUILD, "hv.efi"), os.path.join(net_run.BUILD, "agent.efi"), linux_run.ACPITAB], width=26)


if __name__ == "__main__":
    sys.exit(main())
