"""The host's allow masks (spec §2.3) through kvmi-sim --deny-command /
--deny-event, which set them as KVM_INTROSPECTION_COMMAND/EVENT with
allow=0 would, before the first message of every session."""

import subprocess

import pytest
from conftest import SIM, VCPUS, T

from kvmi import KvmiError
from kvmi import wire as w

ALWAYS = (w.KVMI_GET_VERSION, w.KVMI_CHECK_COMMAND, w.KVMI_CHECK_EVENT)
KNOWN_COMMANDS = list(range(2, 28)) + [29]


def err_of(call):
    with pytest.raises(KvmiError) as e:
        call()
    return e.value.code


def test_disallowed_command_gets_eperm_even_with_replies_off(make_env):
    e = make_env("--deny-command", "GET_REGISTERS", "--deny-command", "17",
                 "--deny-command", "KVMI_SET_PAGE_ACCESS")
    d = e.dom
    assert err_of(lambda: d.get_registers(0)) == w.KVM_EPERM
    assert err_of(lambda: d.read_physical(0x1000, 8)) == w.KVM_EPERM
    assert err_of(lambda: d.set_page_access([(0x500000, 5)])) == w.KVM_EPERM
    # -EPERM is checked before the vCPU index (spec §3.6 step 4 before 5)
    assert err_of(lambda: d.get_registers(VCPUS + 5)) == w.KVM_EPERM
    # With replies off an error-only reply is dropped, but not -EPERM:
    d.control_cmd_response(False, True)
    for msg_id, body in ((w.KVMI_GET_REGISTERS, w.req_get_registers(0)),
                         (w.KVMI_READ_PHYSICAL, w.req_read_physical(0x1000, 8)),
                         (w.KVMI_SET_PAGE_ACCESS, w.req_set_page_access([(0x500000, 5)]))):
        with pytest.raises(KvmiError) as ex:
            d.request(msg_id, body, expect_reply=True)
        assert ex.value.code == w.KVM_EPERM, msg_id
    # an allowed command that fails is still silent: nothing unmatched later
    d.request(w.KVMI_GET_PAGE_ACCESS, w.req_get_page_access([0x500000], view=1),
              expect_reply=False)
    d.control_cmd_response(True, True)
    assert d.get_page_access([0x500000]) == [7]  # the denied SET did nothing
    assert len(d.unmatched) == 0, list(d.unmatched)
    assert d.get_version() == 1  # never a reason to close


def test_disallowed_event_cannot_be_enabled(make_env):
    e = make_env("--deny-event", "PF", "--deny-event", "0", "--deny-event", "CREATE_VCPU")
    d = e.dom
    for v in range(VCPUS):
        assert err_of(lambda: d.control_events(v, w.KVMI_EVENT_PF, True)) == w.KVM_EPERM
        d.control_events(v, w.KVMI_EVENT_CR, True)  # others still allowed
        d.control_events(v, w.KVMI_EVENT_CR, False)
    assert err_of(lambda: d.control_vm_events(w.KVMI_EVENT_UNHOOK, True)) == w.KVM_EPERM
    assert err_of(lambda: d.control_vm_events(w.KVMI_EVENT_CREATE_VCPU, True)) == w.KVM_EPERM
    # ids CONTROL_EVENTS never takes are -22 whatever the mask says
    assert err_of(lambda: d.control_events(0, w.KVMI_EVENT_UNHOOK, True)) == w.KVM_EINVAL
    # so the unhook request finds the event off: the sim just closes
    assert d.get_version() == 1


def test_pause_vcpu_eperm_when_its_event_is_disallowed(make_env):
    e = make_env("--deny-event", "PAUSE_VCPU")
    d = e.dom
    assert err_of(lambda: d.pause_vcpu(0)) == w.KVM_EPERM
    # sent even while replies are disabled (v6: "the tool expects a reply")
    d.control_cmd_response(False, True)
    with pytest.raises(KvmiError) as ex:
        d.request(w.KVMI_PAUSE_VCPU, w.req_pause_vcpu(1, 1), expect_reply=True)
    assert ex.value.code == w.KVM_EPERM
    d.control_cmd_response(True, True)
    # libkvmi's pause-all batch: every PAUSE_VCPU answers -EPERM inside it
    with pytest.raises(KvmiError) as ex:
        d.pause_all()
    assert ex.value.batch_errors == [(w.KVMI_PAUSE_VCPU, -w.KVM_EPERM)] * VCPUS
    # nothing was counted: once each vCPU has answered a command after the
    # batch (it ran its service loop), no PAUSE event may be queued
    for v in range(VCPUS):
        d.get_vcpu_info(v)
        d.get_vcpu_info(v)
    assert not [ev for ev in d.queued_events() if ev.event == w.KVMI_EVENT_PAUSE_VCPU]
    assert len(d.unmatched) == 0
    # CONTROL_EVENTS(PAUSE_VCPU) is refused as well
    assert err_of(lambda: d.control_events(0, w.KVMI_EVENT_PAUSE_VCPU, True)) == w.KVM_EPERM


def test_check_command_and_event_report_the_masks(make_env):
    e = make_env("--deny-command", "all", "--deny-event", "-1")
    d = e.dom
    for c in KNOWN_COMMANDS:
        assert d.check_command(c) is (c in ALWAYS), c
    for ev in range(12):
        assert d.check_event(ev) is False, ev
    assert err_of(d.get_guest_info) == w.KVM_EPERM
    assert d.get_version() == 1

    e2 = make_env("--deny-command", "12", "--deny-command", "29", "--deny-event", "TRAP")
    d2 = e2.dom
    for c in KNOWN_COMMANDS:
        assert d2.check_command(c) is (c not in (12, 29)), c
    for ev in range(12):
        assert d2.check_event(ev) is (ev != w.KVMI_EVENT_TRAP), ev
    # 12 is unsupported anyway: the unsupported check comes first (-95)
    assert err_of(d2.control_ve) == w.KVM_EOPNOTSUPP
    assert err_of(d2.get_max_gfn) == w.KVM_EPERM


def test_masks_hold_for_every_session(make_env):
    e = make_env("--deny-command", "GET_XSAVE")
    assert err_of(lambda: e.dom.get_xsave(0)) == w.KVM_EPERM
    e.dom.close()
    d = e.accept()  # the sim reconnects: same policy, applied before the first message
    assert d.check_command(w.KVMI_GET_XSAVE) is False
    assert err_of(lambda: d.get_xsave(0)) == w.KVM_EPERM


@pytest.mark.parametrize("args, says", [
    (["--deny-command", "3"], "cannot be disallowed"),
    (["--deny-command", "GET_VERSION"], "cannot be disallowed"),
    (["--deny-command", "28"], "no such command"),
    (["--deny-command", "0"], "no such command"),
    (["--deny-command", "-2"], "no such command"),
    (["--deny-event", "12"], "no such event"),
    (["--deny-event", "NOPE"], "not a number or a known name"),
])
def test_bad_deny_options_are_refused(args, says):
    p = subprocess.run([SIM, "--listen", "0", "--vcpus", "1", "--mem", "16", *args],
                       capture_output=True, text=True, timeout=T)
    assert p.returncode == 2, p.stderr
    assert says in p.stderr
