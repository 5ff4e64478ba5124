"""Memory-controller counters: perf's interval output and resctrl's files, parsed and
added up exactly; the perf child started, read and reaped; and none on a machine
without them, said as such.

Where each recording comes from:
- tests/data/perf/interval_vm.txt and no_pmu_vm.txt: real, recorded on these
  machines (see tests/data/perf/README.md).
- the memory-controller lines (INTEL_IMC, AMD_UMC): written from the documented
  format, since no machine here has the PMUs. The fields of `perf stat -x, -I` are
  those of perf-stat(1), section CSV FORMAT (tools/perf/Documentation/perf-stat.txt,
  Linux commit 6b45f7b2a37b "perf stat: Document CSV format in manpage"); Intel's
  `cas_count_read`/`cas_count_write` carry scale 6.103515625e-5 and unit MiB
  (arch/x86/events/intel/uncore_snbep.c, INTEL_UNCORE_EVENT_DESC), so perf prints
  them in MiB; AMD's `amd_umc_N` PMUs and `umc_cas_cmd.rd`/`.wr` come from the series
  "perf/x86/amd/uncore: Add memory controller support" (2023) and perf's
  amdzen4/recommended.json, whose umc_mem_read_bandwidth is umc_cas_cmd.rd * 64.
- resctrl: the layout of Documentation/arch/x86/resctrl.rst (mon_data/mon_L3_XX/
  mbm_total_bytes, cumulative bytes; "Unavailable" when the counter cannot be read).
"""

import stat
import sys
import time
from pathlib import Path

import pytest

from halospec_tui.bandwidth import (
    PMU_DIR,
    RESCTRL_DIR,
    PerfCounter,
    PerfLine,
    PerfTally,
    Reading,
    ResctrlCounter,
    Unavailable,
    gbps_between,
    imc_events,
    line_bytes,
    mbm_files,
    open_counter,
    parse_perf_line,
    read_mbm,
)

DATA = Path(__file__).parent / "data" / "perf"
MIB = 1 << 20

# Two Intel IMC boxes, three 100 ms intervals (documented format; see the docstring).
INTEL_IMC = """\
     0.100104211,1024.50,MiB,uncore_imc_0/cas_count_read/,100104211,100.00,,
     0.100104211,512.25,MiB,uncore_imc_0/cas_count_write/,100104211,100.00,,
     0.100104211,1000.00,MiB,uncore_imc_1/cas_count_read/,100104211,100.00,,
     0.100104211,500.00,MiB,uncore_imc_1/cas_count_write/,100104211,100.00,,
     0.200311093,100.00,MiB,uncore_imc_0/cas_count_read/,100206882,100.00,,
     0.200311093,<not counted>,MiB,uncore_imc_0/cas_count_write/,0,0.00,,
     0.200311093,100.00,MiB,uncore_imc_1/cas_count_read/,100206882,100.00,,
     0.200311093,100.00,MiB,uncore_imc_1/cas_count_write/,100206882,100.00,,
     0.300512000,10.00,MiB,uncore_imc_0/cas_count_read/,100200907,100.00,,
     0.300512000,20.00,MiB,uncore_imc_0/cas_count_write/,100200907,100.00,,
     0.300512000,30.00,MiB,uncore_imc_1/cas_count_read/,100200907,100.00,,
     0.300512000,40.00,MiB,uncore_imc_1/cas_count_write/,100200907,100.00,,
"""
# AMD: unitless counts of 64-byte CAS commands, one UMC, two intervals.
AMD_UMC = """\
     0.100201234,1562500,,amd_umc_0/umc_cas_cmd.rd/,100201234,100.00,,
     0.100201234,781250,,amd_umc_0/umc_cas_cmd.wr/,100201234,100.00,,
     0.200402468,0,,amd_umc_0/umc_cas_cmd.rd/,100201234,100.00,,
     0.200402468,15625,,amd_umc_0/umc_cas_cmd.wr/,100201234,100.00,,
"""


def test_real_interval_lines_parse_field_by_field():
    lines = (DATA / "interval_vm.txt").read_text().splitlines()
    parsed = [parse_perf_line(x) for x in lines]
    assert parsed[:3] == [
        PerfLine(0.100205564, 200.56, "msec", "cpu-clock"),
        PerfLine(0.100205564, 0.0, "", "page-faults"),
        PerfLine(0.100205564, None, "", "cycles"),  # <not supported>
    ]
    assert parsed[7] == PerfLine(0.300968966, 1500.0, "", "page-faults")
    assert len(parsed) == 12 and None not in parsed


def test_what_perf_says_without_the_pmu_is_no_counter_line():
    text = (DATA / "no_pmu_vm.txt").read_text()
    assert "Cannot find PMU `uncore_imc_0'" in text
    assert [parse_perf_line(x) for x in text.splitlines()] == [None] * len(text.splitlines())
    assert parse_perf_line("") is None and parse_perf_line("#  time,counts") is None


def test_line_bytes_by_unit():
    assert line_bytes(PerfLine(0.1, 1.5, "MiB", "x"), 64) == 1.5 * MIB
    assert line_bytes(PerfLine(0.1, 1000, "", "x"), 64) == 64000
    assert line_bytes(PerfLine(0.1, None, "MiB", "x"), 64) is None
    assert line_bytes(PerfLine(0.1, 5, "msec", "x"), 64) is None  # not a size


def _tally(text, n_events, count_bytes=64.0, lag=0.002):
    tally = PerfTally(n_events, count_bytes)
    for raw in text.splitlines():
        line = parse_perf_line(raw)
        assert line is not None
        tally.add(line, 1000.0 + line.t + lag)  # arrived `lag` after perf's stamp
    return tally


def test_intel_intervals_add_up_in_bytes_and_a_gap_is_kept_apart():
    tally = _tally(INTEL_IMC, 4)
    assert tally.intervals == 3 and tally.gaps == 1  # the second had <not counted>
    first = (1024.50 + 512.25 + 1000.00 + 500.00) * MIB
    third = (10 + 20 + 30 + 40) * MIB
    assert tally.total == first + third
    assert tally.last_rate == pytest.approx(third / (0.300512000 - 0.200311093))
    assert tally.offset == pytest.approx(1000.002)
    assert tally.reading() == Reading(pytest.approx(1000.302512), first + third, 1)


def test_amd_counts_are_64_byte_commands():
    tally = _tally(AMD_UMC, 2)
    assert tally.total == (1562500 + 781250 + 15625) * 64
    assert tally.last_rate == pytest.approx(15625 * 64 / (0.200402468 - 0.100201234))
    # the first interval spans perf's start to its stamp: 150 MB in 0.1002 s
    assert (1562500 + 781250) * 64 == 150_000_000


def test_an_interval_cut_short_is_a_gap():
    lines = INTEL_IMC.splitlines()
    cut = "\n".join(lines[:2] + lines[4:8])  # the first interval lost two lines
    tally = _tally(cut, 4)
    assert (tally.intervals, tally.gaps, tally.total) == (2, 2, 0.0)


def test_gbps_between_readings():
    a, b = Reading(10.0, 1e9), Reading(12.0, 5e9)
    assert gbps_between(a, b) == 2.0
    assert gbps_between(a, Reading(12.0, 5e9, gaps=1)) is None  # an unknown interval between
    assert gbps_between(b, a) is None and gbps_between(a, a) is None
    assert gbps_between(None, b) is None and gbps_between(a, None) is None


def _pmus(tmp_path, devices):
    """A fake /sys/bus/event_source/devices: {device: [event files]}."""
    for dev, events in devices.items():
        d = tmp_path / dev / "events"
        d.mkdir(parents=True)
        for e in events:
            (d / e).write_text("event=0x04,umask=0x03\n")
    return tmp_path


def test_which_events_count_memory_traffic(tmp_path):
    intel = _pmus(tmp_path / "i", {
        "uncore_imc_0": ["cas_count_read", "cas_count_write", "clockticks"],
        "uncore_imc_1": ["cas_count_read", "cas_count_write"],
        "uncore_imc_free_running_0": ["data_read", "data_write"],  # same traffic: not twice
        "cpu": [], "software": [],
    })  # fmt: skip
    assert imc_events(intel) == ([
        "uncore_imc_0/cas_count_read/", "uncore_imc_0/cas_count_write/",
        "uncore_imc_1/cas_count_read/", "uncore_imc_1/cas_count_write/",
    ], 64.0)  # fmt: skip
    client = _pmus(tmp_path / "c", {"uncore_imc_free_running_0": ["data_read", "data_write"]})
    assert imc_events(client)[0] == [
        "uncore_imc_free_running_0/data_read/", "uncore_imc_free_running_0/data_write/"
    ]  # fmt: skip
    amd = _pmus(tmp_path / "a", {"amd_umc_0": [], "amd_umc_1": [], "amd_df": [], "amd_l3": []})
    assert imc_events(amd) == ([
        "amd_umc_0/umc_cas_cmd.rd/", "amd_umc_0/umc_cas_cmd.wr/",
        "amd_umc_1/umc_cas_cmd.rd/", "amd_umc_1/umc_cas_cmd.wr/",
    ], 64.0)  # fmt: skip
    # this machine's devices: breakpoint, msr, software, tracepoint, uprobe
    vm = _pmus(tmp_path / "v", {n: [] for n in ("breakpoint", "msr", "software", "tracepoint")})
    assert imc_events(vm) == ([], 0.0)
    assert imc_events(tmp_path / "absent") == ([], 0.0)


def _resctrl(tmp_path, groups):
    """A fake /sys/fs/resctrl: {group path ("" for the root): {domain: text}}."""
    for group, domains in groups.items():
        for dom, text in domains.items():
            d = tmp_path / group / "mon_data" / dom
            d.mkdir(parents=True, exist_ok=True)
            (d / "mbm_total_bytes").write_text(text)
    (tmp_path / "info" / "L3_MON").mkdir(parents=True)
    return tmp_path


def test_resctrl_sums_the_root_and_control_groups_not_their_subgroups(tmp_path):
    root = _resctrl(tmp_path, {
        "": {"mon_L3_00": "1000\n", "mon_L3_01": "2000\n"},
        "grp": {"mon_L3_00": "300\n"},
        "grp/mon_groups/sub": {"mon_L3_00": "100\n"},  # inside grp's count already
    })  # fmt: skip
    files = mbm_files(root)
    assert [str(f.relative_to(root)) for f in files] == [
        "mon_data/mon_L3_00/mbm_total_bytes", "mon_data/mon_L3_01/mbm_total_bytes",
        "grp/mon_data/mon_L3_00/mbm_total_bytes",
    ]  # fmt: skip
    assert read_mbm(files) == 3300.0
    counter = ResctrlCounter(files)
    (root / "mon_data" / "mon_L3_00" / "mbm_total_bytes").write_text("5000\n")
    got = counter.read()
    assert got is not None and got.total_bytes == 4000.0 and got.gaps == 0
    (root / "grp" / "mon_data" / "mon_L3_00" / "mbm_total_bytes").write_text("Unavailable\n")
    assert counter.read() is None  # no figure rather than a wrong one


def test_no_counters_is_said_with_the_reason(tmp_path):
    none = open_counter(pmu_dir=_pmus(tmp_path / "p", {"software": []}),
                        resctrl_dir=tmp_path / "absent")  # fmt: skip
    assert none == Unavailable(
        f"no uncore_imc or amd_umc PMU in {tmp_path / 'p'}; "
        f"resctrl not mounted at {tmp_path / 'absent'}"
    )
    empty = open_counter(pmu_dir=tmp_path / "p", resctrl_dir=_resctrl(tmp_path / "r", {}))
    assert isinstance(empty, Unavailable) and "no readable resctrl mbm_total_bytes" in empty.reason
    found = open_counter(pmu_dir=tmp_path / "p",
                         resctrl_dir=_resctrl(tmp_path / "q", {"": {"mon_L3_00": "7\n"}}))  # fmt: skip
    assert isinstance(found, ResctrlCounter)


def test_this_machine_without_counters_says_so():
    """These virtual machines show no memory-controller PMU and no resctrl: checked."""
    has_pmu = imc_events(PMU_DIR)[0] != []
    has_resctrl = (RESCTRL_DIR / "mon_data").is_dir()
    if has_pmu or has_resctrl:
        pytest.skip("this machine has memory-controller counters")
    got = open_counter()
    assert isinstance(got, Unavailable)
    assert got.reason.startswith(f"no uncore_imc or amd_umc PMU in {PMU_DIR}")


# A stand-in for perf: writes its arguments to a file, then the recorded Intel lines
# to stderr one interval every 0.1 s (as `perf stat -I 100` does), then waits.
STAND_IN = """\
import sys, time
open(sys.argv[1], "w").write(" ".join(sys.argv[2:]))
lines = open(sys.argv[2 + sys.argv[2:].index("--recording") + 1]).read().splitlines()
for i in range(0, len(lines), 4):
    time.sleep(0.1)
    sys.stderr.write("\\n".join(lines[i:i + 4]) + "\\n")
    sys.stderr.flush()
time.sleep(60)
"""


def _stand_in(tmp_path, recording):
    rec = tmp_path / "rec.txt"
    rec.write_text(recording)
    exe = tmp_path / "perf"
    exe.write_text(
        f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'perf.py'} {tmp_path / 'args'} "
        f'"$@" --recording {rec}\n'
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "perf.py").write_text(STAND_IN)
    return str(exe)


def test_perf_counter_runs_reads_and_is_reaped(tmp_path, no_leftovers):
    pmus = _pmus(tmp_path / "pmu", {"uncore_imc_0": ["cas_count_read", "cas_count_write"],
                                    "uncore_imc_1": ["cas_count_read", "cas_count_write"]})  # fmt: skip
    perf = _stand_in(tmp_path, INTEL_IMC)
    counter = open_counter(pmu_dir=pmus, resctrl_dir=tmp_path / "absent", perf=perf)
    try:
        assert isinstance(counter, PerfCounter)
        assert (tmp_path / "args").read_text() == (
            "stat -a -x , -I 100 --interval-count 864000 -e uncore_imc_0/cas_count_read/,"
            "uncore_imc_0/cas_count_write/,uncore_imc_1/cas_count_read/,"
            f"uncore_imc_1/cas_count_write/ --recording {tmp_path / 'rec.txt'}"
        )
        deadline = time.monotonic() + 20
        while counter.tally.intervals < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        got = counter.read()
        assert got is not None and got.gaps == 1
        assert got.total_bytes == (1024.50 + 512.25 + 1000 + 500 + 100) * MIB
        assert counter.recent_gbps() == pytest.approx(100 * MIB / 0.100200907 / 1e9)
    finally:
        if not isinstance(counter, Unavailable):
            counter.close()


def test_a_perf_that_fails_is_no_counter_and_leaves_nothing(tmp_path, no_leftovers):
    pmus = _pmus(tmp_path / "pmu", {"amd_umc_0": []})
    exe = tmp_path / "perf"
    said = (DATA / "no_pmu_vm.txt").read_text().replace("uncore_imc_0", "amd_umc_0")
    (tmp_path / "said.txt").write_text(said)
    exe.write_text(f"#!/bin/sh\ncat {tmp_path / 'said.txt'} >&2\nexit 129\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    got = open_counter(pmu_dir=pmus, resctrl_dir=tmp_path / "absent", perf=str(exe))
    assert isinstance(got, Unavailable)
    assert got.reason == (
        "perf stat exited (event syntax error: 'amd_umc_0/cas_count_read/'; "
        "\\___ Cannot find PMU `amd_umc_0'. Missing kernel support?); "
        f"resctrl not mounted at {tmp_path / 'absent'}"
    )
