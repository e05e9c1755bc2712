#!/usr/bin/env python3
"""Mutation check of the RTL benches and proofs: each mutant is one small, plausible bug
put into a copy of hdl/rtl (never the tree itself); the checks listed with it (pytest
benches through PMQ_RTL, proofs through hdl/formal/run.sh) must fail on it.

    .venv/bin/python hdl/tb/mutants.py            # every mutant (several minutes)
    .venv/bin/python hdl/tb/mutants.py fifo-      # the mutants whose name starts so

Exit status 1 if a mutant survives every check listed for it. Not part of scripts/test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")


@dataclass
class Mutant:
    name: str
    file: str
    old: str
    new: str
    what: str
    checks: list[str]  # "tb:<pytest args>" or "formal:<proof>"


# the top's benches by concern (hdl/tb/test_top_*.py): the core tests (identity and
# AXI, events and FIFO, LEDs and inputs) and the v0.2 features (debounce, edge select,
# interrupt, DROPPED, LED operations and PWM, raw strobes, the generator)
_CORE = "hdl/tb/test_top_axi.py hdl/tb/test_top_events.py hdl/tb/test_top_leds.py"
_FEAT = ("hdl/tb/test_top_debounce.py hdl/tb/test_top_events.py hdl/tb/test_top_irq.py "
         "hdl/tb/test_top_leds.py hdl/tb/test_top_axi.py hdl/tb/test_top_generator.py")
TOP_CORE = f"tb:{_CORE} -k default or min"
TOP_FEAT = f"tb:{_FEAT} -k default or min"
TOP_FEAT_DEFAULT = f"tb:{_FEAT} -k default"
REGMAP = "tb:hdl/tb/test_pynq_mqtt_io_regmap.py -k default or min"

MUTANTS = [
    # ---- AXI4-Lite front end
    Mutant("axil-b-early", "pmq_axil_slave.v",
           "assign s_axi_bvalid  = bvalid_reg;", "assign s_axi_bvalid  = bvalid_reg || do_write;",
           "BVALID in the cycle of the AW/W handshake",
           ["tb:hdl/tb/test_pmq_axil_slave.py", "formal:axil_slave", "formal:top", TOP_CORE]),
    Mutant("axil-b-overrun", "pmq_axil_slave.v",
           "wire do_write = aw_held_reg && w_held_reg && (!bvalid_reg || s_axi_bready);",
           "wire do_write = aw_held_reg && w_held_reg;",
           "a write while the previous B waits (a B is lost)",
           ["tb:hdl/tb/test_pmq_axil_slave.py", "formal:axil_slave", TOP_CORE]),
    Mutant("axil-rd-strobe", "pmq_axil_slave.v",
           "assign reg_rd_en   = ar_hs;", "assign reg_rd_en   = s_axi_arvalid;",
           "a read strobe per clock of ARVALID, not per handshake (extra pops)",
           ["tb:hdl/tb/test_pmq_axil_slave.py", "formal:axil_slave", TOP_CORE]),
    Mutant("axil-w-overwrite", "pmq_axil_slave.v",
           "        if (w_hs) begin\n            w_data_reg <= s_axi_wdata;",
           "        if (s_axi_wvalid) begin\n            w_data_reg <= s_axi_wdata;",
           "a held W overwritten by the next one",
           ["tb:hdl/tb/test_pmq_axil_slave.py", "formal:axil_slave"]),
    Mutant("axil-r-drop", "pmq_axil_slave.v",
           "        end else if (s_axi_rready) begin\n            rvalid_reg <= 1'b0;",
           "        end else begin\n            rvalid_reg <= 1'b0;",
           "RVALID dropped without RREADY",
           ["tb:hdl/tb/test_pmq_axil_slave.py", "formal:axil_slave", TOP_CORE]),
    # ---- FIFO
    Mutant("fifo-count", "pmq_fifo.v",
           "assign count     = (wr_ptr_reg - rd_ptr_reg) + {{DEPTH_LOG2{1'b0}}, out_valid_reg};",
           "assign count     = (wr_ptr_reg - rd_ptr_reg);",
           "count without the output register",
           ["tb:hdl/tb/test_pmq_fifo.py", "formal:fifo_d2", TOP_CORE]),
    Mutant("fifo-overflow", "pmq_fifo.v",
           "wire push = in_valid && !ram_full;", "wire push = in_valid;",
           "a push into a full storage",
           ["tb:hdl/tb/test_pmq_fifo.py", "formal:fifo_d2", TOP_CORE]),
    Mutant("fifo-bubble", "pmq_fifo.v",
           "wire load = !ram_empty && (!out_valid_reg || pop);",
           "wire load = !ram_empty && !out_valid_reg;",
           "the head refilled a clock after a pop (half rate)",
           ["tb:hdl/tb/test_pmq_fifo.py", "formal:fifo_d2",
            "tb:hdl/tb/test_pmq_event_capture.py"]),
    Mutant("fifo-dup", "pmq_fifo.v",
           "        end else if (pop) begin\n            out_valid_reg <= 1'b0;",
           "        end else if (pop && rd_ptr_reg[0]) begin\n            out_valid_reg <= 1'b0;",
           "a popped head sometimes stays (duplicate)",
           ["tb:hdl/tb/test_pmq_fifo.py", "formal:fifo_d2", TOP_CORE]),
    # ---- debounce
    Mutant("debounce-short", "pmq_debounce.v",
           "now_reg + {1'b0, lock_us} + 1'b1;", "now_reg + {1'b0, lock_us};",
           "lock_us ticks, not lock_us + 1: the lockout can end a microsecond early",
           ["tb:hdl/tb/test_pmq_debounce.py"]),
    Mutant("debounce-leak", "pmq_debounce.v",
           "wire               free = !held_reg || (now_reg == until_reg);",
           "wire               free = 1'b1;",
           "changes pass during the lockout",
           ["tb:hdl/tb/test_pmq_debounce.py", TOP_FEAT]),
    Mutant("debounce-stuck", "pmq_debounce.v",
           "        end else if (tick_us) begin\n            now_reg <= now_reg + 1'b1;",
           "        end else if (tick_us && lock_us == {TIME_WIDTH{1'b0}}) begin\n            now_reg <= now_reg + 1'b1;",
           "the lockout never ends while a time is set",
           ["tb:hdl/tb/test_pmq_debounce.py", TOP_FEAT]),
    # ---- capture
    Mutant("capture-seq-lost", "pmq_event_capture.v",
           "seq_reg <= seq_reg + {{(SEQ_WIDTH - LOST_WIDTH){1'b0}}, n_edges};",
           "seq_reg <= seq_reg + (snap_in_ready ? {{(SEQ_WIDTH - LOST_WIDTH){1'b0}}, n_edges} : {SEQ_WIDTH{1'b0}});",
           "a lost snapshot takes no sequence numbers (the loss is invisible)",
           ["tb:hdl/tb/test_pmq_event_capture.py", TOP_CORE]),
    Mutant("capture-rise-fall", "pmq_event_capture.v",
           "((level & rise) | (~level & fall))", "((level & fall) | (~level & rise))",
           "EDGE_RISE and EDGE_FALL swapped",
           ["tb:hdl/tb/test_pmq_event_capture.py", TOP_FEAT]),
    Mutant("capture-enable", "pmq_event_capture.v",
           "(level ^ prev_reg) & enable &", "(level ^ prev_reg) &",
           "INPUT_ENABLE ignored",
           ["tb:hdl/tb/test_pmq_event_capture.py", TOP_FEAT]),
    Mutant("capture-lost-count", "pmq_event_capture.v",
           "+ {{(LOST_WIDTH - 1){1'b0}}, (evt_valid && !evt_ready)};", ";",
           "an event lost to a full FIFO is not counted",
           ["tb:hdl/tb/test_pmq_event_capture.py", TOP_CORE, TOP_FEAT]),
    Mutant("capture-gen-first", "pmq_event_capture.v",
           "wire                  gen_take = (WITH_GEN != 0) && gen_valid && !pin_any;",
           "wire                  gen_take = (WITH_GEN != 0) && gen_valid && !pin_any && !level[0];",
           "a generated event refused while input 0 is high",
           ["tb:hdl/tb/test_pmq_event_capture.py"]),
    Mutant("capture-seq-k", "pmq_event_capture.v",
           "assign evt_seq   = head_seq + {{(SEQ_WIDTH - K_WIDTH){1'b0}}, k_reg};",
           "assign evt_seq   = head_seq;",
           "every event of a snapshot gets its first sequence number",
           ["tb:hdl/tb/test_pmq_event_capture.py", TOP_CORE]),
    # ---- generator
    Mutant("gen-period", "pmq_event_gen.v",
           "            gap_reg <= period;",
           "            gap_reg <= period + 32'd1;",
           "one clock too many between generated events",
           ["tb:hdl/tb/test_pmq_event_gen.py", TOP_FEAT]),
    Mutant("gen-level", "pmq_event_gen.v",
           "assign gen_level = ~|(level_reg & lowest);", "assign gen_level = |(level_reg & lowest);",
           "the first generated event is a release",
           ["tb:hdl/tb/test_pmq_event_gen.py", TOP_FEAT]),
    Mutant("gen-sent-restart", "pmq_event_gen.v",
           "        end else if (start && !running_reg) begin\n            sent_reg <= 32'd0;",
           "        end else if (1'b0) begin\n            sent_reg <= 32'd0;",
           "GEN_SENT not cleared by a new start",
           ["tb:hdl/tb/test_pmq_event_gen.py", TOP_FEAT]),
    Mutant("gen-count", "pmq_event_gen.v",
           "(sent_next >= count)", "(sent_reg >= count)",
           "one event more than GEN_COUNT",
           ["tb:hdl/tb/test_pmq_event_gen.py", TOP_FEAT]),
    # ---- LED PWM
    Mutant("pwm-duty", "pmq_led_pwm.v",
           "phase < brightness[8*i +: 8]", "phase <= brightness[8*i +: 8]",
           "one PWM step too bright",
           [TOP_FEAT]),
    Mutant("pwm-full", "pmq_led_pwm.v",
           "(brightness[8*i +: 8] == 8'hFF || phase < brightness[8*i +: 8])",
           "(phase < brightness[8*i +: 8])",
           "255 not steadily on",
           [TOP_FEAT]),
    # ---- register block: the generated pmq_regs.v and the top's hardware side
    Mutant("top-dropped-clear", "pmq_regs.v",
           "        end else if (we_dropped && !dropped_sum[32]) begin\n            dropped_reg <= 32'd0;",
           "        end else if (we_dropped) begin\n            dropped_reg <= 32'd0;",
           "a DROPPED write clears instead of subtracting",
           [TOP_CORE, TOP_FEAT, REGMAP]),
    Mutant("top-dropped-wrap", "pmq_regs.v",
           "        end else if (!we_dropped && dropped_sum[32]) begin\n            dropped_reg <= {32{1'b1}};",
           "        end else if (1'b0) begin\n            dropped_reg <= {32{1'b1}};",
           "DROPPED wraps instead of saturating",
           [TOP_FEAT]),
    Mutant("top-overflow-clear-wins", "pmq_regs.v",
           "<= hw2reg_irq_status_overflow_set | (irq_status_overflow_reg & ~(we_irq_status ? wr_bits[1 +: 1] : {1{1'b0}}));",
           "<= (hw2reg_irq_status_overflow_set | irq_status_overflow_reg) & ~(we_irq_status ? wr_bits[1 +: 1] : {1{1'b0}});",
           "a W1C of OVERFLOW wins over a loss in the same clock",
           [TOP_FEAT_DEFAULT]),
    Mutant("top-gen-done-clear-wins", "pmq_regs.v",
           "<= hw2reg_irq_status_gen_done_set | (irq_status_gen_done_reg & ~(we_irq_status ? wr_bits[2 +: 1] : {1{1'b0}}));",
           "<= (hw2reg_irq_status_gen_done_set | irq_status_gen_done_reg) & ~(we_irq_status ? wr_bits[2 +: 1] : {1{1'b0}});",
           "a W1C of GEN_DONE wins over the generator finishing in the same clock",
           [TOP_FEAT_DEFAULT]),
    Mutant("top-dropped-strb", "pmq_regs.v",
           "we_dropped ? ~wr_bits[0 +: 32] : dropped_due",
           "we_dropped ? ~reg_wr_data[0 +: 32] : dropped_due",
           "a DROPPED write subtracts unstrobed bytes too",
           [TOP_FEAT]),
    Mutant("top-w1c-strb", "pmq_regs.v",
           "we_irq_status ? wr_bits[1 +: 1]",
           "we_irq_status ? reg_wr_data[1 +: 1]",
           "a W1C of OVERFLOW through an unstrobed byte",
           [TOP_FEAT]),
    Mutant("top-threshold", "pynq_mqtt_io.v",
           "(waiting >= reg2hw_irq_threshold_count)", "(waiting > reg2hw_irq_threshold_count)",
           "EVENT one event after the threshold",
           [TOP_FEAT]),
    Mutant("top-age-from-now", "pynq_mqtt_io.v",
           "((time_us - head_ts) >= reg2hw_irq_timeout_us)",
           "((time_us - reg2hw_evt_ts) >= reg2hw_irq_timeout_us)",
           "the timeout measured from the last pop, not the head's timestamp",
           [TOP_FEAT]),
    Mutant("top-irq-enable", "pynq_mqtt_io.v",
           "irq_reg <= (status_event && reg2hw_irq_enable_event)",
           "irq_reg <= status_event",
           "IRQ_ENABLE ignored",
           [TOP_CORE, TOP_FEAT]),
    Mutant("top-led-toggle", "pynq_mqtt_io.v",
           ": (reg2hw_led ^ reg2hw_led_toggle);", ": (reg2hw_led | reg2hw_led_toggle);",
           "LED_TOGGLE sets",
           [TOP_FEAT]),
    Mutant("top-led-clr-strb", "pmq_regs.v",
           "assign reg2hw_led_clr = wr_bits[0 +: N_LEDS];",
           "assign reg2hw_led_clr = reg_wr_data[0 +: N_LEDS];",
           "LED_CLR ignores WSTRB",
           [TOP_FEAT]),
    Mutant("top-synthetic-flag", "pynq_mqtt_io.v",
           ".hw2reg_evt_pop_synthetic(head_synth)", ".hw2reg_evt_pop_synthetic(1'b0)",
           "SYNTHETIC never set",
           [TOP_FEAT]),
    Mutant("regs-rw-strb", "pmq_regs.v",
           "if (we_scratch && reg_wr_strb[(0 + i_scratch) / 8]) begin",
           "if (we_scratch) begin",
           "SCRATCH ignores WSTRB",
           [TOP_CORE, REGMAP]),
    Mutant("regs-alias", "pmq_regs.v",
           "wire            rd_in  = ~|(reg_rd_addr >> DEC);",
           "wire            rd_in  = 1'b1;",
           "addresses above the decoded window alias the registers",
           [TOP_CORE]),
    Mutant("regs-unimplemented-bits", "pmq_regs.v",
           "begin : g_rv_input_enable\n            assign rv_input_enable[g] = 1'b0;",
           "begin : g_rv_input_enable\n            assign rv_input_enable[g] = 1'b1;",
           "INPUT_ENABLE bits beyond N_INPUTS read 1",
           [REGMAP, TOP_CORE]),
    Mutant("regs-pwm-read0", "pmq_regs.v",
           "                assign rv_led_pwm[g] = 1'b0;",
           "                assign rv_led_pwm[g] = led_pwm_q[g % 8];",
           "LED_PWM bytes of LEDs the build lacks do not read 0",
           [REGMAP]),
]


def run_check(check: str, rtl: Path, log) -> bool:
    """True if the check failed (the mutant was caught)."""
    env = dict(os.environ, PMQ_RTL=str(rtl))
    kind, _, arg = check.partition(":")
    if kind == "tb":
        parts = arg.split(" -k ", 1)
        cmd = [PY, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *parts[0].split()]
        if len(parts) > 1:
            cmd += ["-k", parts[1]]
    else:
        cmd = [str(ROOT / "hdl" / "formal" / "run.sh"), arg]
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=900)
    except subprocess.TimeoutExpired:
        return True
    return r.returncode != 0


def main() -> int:
    prefixes = sys.argv[1:]
    chosen = [m for m in MUTANTS if not prefixes or any(m.name.startswith(p) for p in prefixes)]
    survivors = []
    with tempfile.TemporaryDirectory(prefix="pmq-mutant-") as tmp:
        log_path = Path(tmp) / "log.txt"
        for m in chosen:
            rtl = Path(tmp) / m.name
            shutil.copytree(ROOT / "hdl" / "rtl", rtl)
            path = rtl / m.file
            text = path.read_text()
            assert text.count(m.old) == 1, f"{m.name}: the pattern is not found exactly once"
            path.write_text(text.replace(m.old, m.new))
            caught = []
            t0 = time.time()
            with log_path.open("w") as log:
                for check in m.checks:
                    caught.append(run_check(check, rtl, log))
            verdict = "killed" if any(caught) else "SURVIVED"
            marks = " ".join(("x" if c else ".") + ck.split(":", 1)[1].split()[0].split("/")[-1]
                             for c, ck in zip(caught, m.checks))
            print(f"{verdict:8} {m.name:26} {time.time() - t0:5.0f}s  {m.what}  [{marks}]", flush=True)
            if not any(caught):
                survivors.append(m.name)
            shutil.rmtree(rtl)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
