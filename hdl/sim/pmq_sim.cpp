// The C shim around the Verilated pynq_mqtt_io model (see pmq_sim.h).
//
// Signals change only while the clock is low; each rising edge is one evaluation with
// clk high. A handshake is sampled in the low phase, so it takes effect at the edge
// that follows, exactly as a synchronous AXI master's would.
#include "pmq_sim.h"

#include <deque>
#include <memory>

#include "Vpynq_mqtt_io.h"
#include "Vpynq_mqtt_io___024root.h"
#include "pmq_clock_fall.h"
#include "pynq_mqtt_io_regs.h"
#include "verilated.h"

#ifndef PMQ_SIM_CLK_HZ
#error "PMQ_SIM_CLK_HZ must be defined by the build"
#endif
#ifndef PMQ_SIM_N_INPUTS
#error "PMQ_SIM_N_INPUTS must be defined by the build"
#endif
#ifndef PMQ_SIM_N_LEDS
#error "PMQ_SIM_N_LEDS must be defined by the build"
#endif

namespace {
// A transaction that has not completed after this many cycles is reported as a hang.
constexpr uint64_t kAxiTimeoutCycles = 1000;
constexpr uint64_t kResetCycles = 8;
}  // namespace

struct PinChange {
    uint64_t cycle;
    uint32_t mask;
    bool level;
};

struct pmq_sim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vpynq_mqtt_io> top;
    uint64_t cycles = 0;
    uint32_t inputs = 0;
    std::deque<PinChange> schedule;
    // Evaluate every falling edge of pmq_sim_step(), as the tests' reference does.
    bool exact_clock = false;

    pmq_sim() : ctx(new VerilatedContext), top(new Vpynq_mqtt_io{ctx.get(), "pynq_mqtt_io"}) {}

    // Low phase: settle combinational outputs for the current inputs.
    void low() {
        top->s_axi_aclk = 0;
        top->eval();
    }
    // Rising edge, after the pin changes scheduled for this cycle.
    void high() {
        if (!schedule.empty() && schedule.front().cycle <= cycles) {
            do {
                const PinChange &c = schedule.front();
                inputs = c.level ? (inputs | c.mask) : (inputs & ~c.mask);
                schedule.pop_front();
            } while (!schedule.empty() && schedule.front().cycle <= cycles);
            top->btn = inputs;
            low();
        }
        top->s_axi_aclk = 1;
        top->eval();
        ++cycles;
    }
    // Falling edge between two rising edges with the bus idle (pmq_clock_fall.h).
    void fall() { pmq_clock_fall(top.get(), exact_clock); }
    void idle_bus() {
        top->s_axi_awvalid = 0;
        top->s_axi_wvalid = 0;
        top->s_axi_bready = 0;
        top->s_axi_arvalid = 0;
        top->s_axi_rready = 0;
        top->s_axi_awprot = 0;
        top->s_axi_arprot = 0;
    }
};

extern "C" {

pmq_sim *pmq_sim_create(void) {
    pmq_sim *sim = new (std::nothrow) pmq_sim;
    if (sim == nullptr) {
        return nullptr;
    }
    sim->idle_bus();
    sim->top->btn = 0;
    sim->top->s_axi_aresetn = 0;
    for (uint64_t i = 0; i < kResetCycles; ++i) {
        sim->low();
        sim->high();
    }
    sim->low();
    sim->top->s_axi_aresetn = 1;
    sim->low();
    // The model must be the IP the register header describes, built with the parameters
    // this shim reports: a stale model or header is refused here, not met as odd values.
    uint32_t id = 0;
    uint32_t params = 0;
    if (pmq_sim_axi_read(sim, PMQ_ID, &id) != PMQ_SIM_OKAY || id != PMQ_ID_VALUE ||
        pmq_sim_axi_read(sim, PMQ_PARAMS, &params) != PMQ_SIM_OKAY ||
        (params & PMQ_PARAMS_N_INPUTS_MASK) >> PMQ_PARAMS_N_INPUTS_SHIFT != static_cast<uint32_t>(PMQ_SIM_N_INPUTS) ||
        (params & PMQ_PARAMS_N_LEDS_MASK) >> PMQ_PARAMS_N_LEDS_SHIFT != static_cast<uint32_t>(PMQ_SIM_N_LEDS) ||
        (params & PMQ_PARAMS_GENERATOR_MASK) >> PMQ_PARAMS_GENERATOR_SHIFT != static_cast<uint32_t>(PMQ_SIM_WITH_GEN)) {
        pmq_sim_destroy(sim);
        return nullptr;
    }
    return sim;
}

void pmq_sim_destroy(pmq_sim *sim) {
    if (sim != nullptr) {
        sim->top->final();
        delete sim;
    }
}

void pmq_sim_step(pmq_sim *sim, uint64_t cycles) {
    for (uint64_t i = 0; i < cycles; ++i) {
        sim->high();
        sim->fall();
    }
}

uint64_t pmq_sim_step_until_irq(pmq_sim *sim, uint64_t cycles) {
    uint64_t done = 0;
    while (done < cycles && !sim->top->irq) {
        sim->high();
        sim->fall();
        ++done;
    }
    return done;
}

void pmq_sim_set_exact_clock(pmq_sim *sim, int exact) { sim->exact_clock = exact != 0; }

int pmq_sim_fast_clock(void) { return pmq_clock_fall_fast<Vpynq_mqtt_io>() ? 1 : 0; }

uint64_t pmq_sim_cycles(const pmq_sim *sim) { return sim->cycles; }

int pmq_sim_axi_read(pmq_sim *sim, uint32_t addr, uint32_t *data) {
    Vpynq_mqtt_io *t = sim->top.get();
    t->s_axi_araddr = addr;
    t->s_axi_arvalid = 1;
    t->s_axi_rready = 1;
    sim->low();
    uint64_t waited = 0;
    while (!t->s_axi_arready) {
        if (++waited > kAxiTimeoutCycles) {
            sim->idle_bus();
            sim->low();
            return PMQ_SIM_TIMEOUT;
        }
        sim->high();
        sim->low();
    }
    sim->high();
    t->s_axi_arvalid = 0;
    sim->low();
    waited = 0;
    while (!t->s_axi_rvalid) {
        if (++waited > kAxiTimeoutCycles) {
            sim->idle_bus();
            sim->low();
            return PMQ_SIM_TIMEOUT;
        }
        sim->high();
        sim->low();
    }
    *data = t->s_axi_rdata;
    const int resp = t->s_axi_rresp;
    sim->high();
    t->s_axi_rready = 0;
    sim->low();
    return resp;
}

int pmq_sim_axi_write(pmq_sim *sim, uint32_t addr, uint32_t data, uint8_t strb) {
    Vpynq_mqtt_io *t = sim->top.get();
    t->s_axi_awaddr = addr;
    t->s_axi_awvalid = 1;
    t->s_axi_wdata = data;
    t->s_axi_wstrb = strb & 0xF;
    t->s_axi_wvalid = 1;
    t->s_axi_bready = 1;
    sim->low();
    uint64_t waited = 0;
    while (t->s_axi_awvalid || t->s_axi_wvalid) {
        if (++waited > kAxiTimeoutCycles) {
            sim->idle_bus();
            sim->low();
            return PMQ_SIM_TIMEOUT;
        }
        const bool aw_done = t->s_axi_awvalid && t->s_axi_awready;
        const bool w_done = t->s_axi_wvalid && t->s_axi_wready;
        sim->high();
        if (aw_done) {
            t->s_axi_awvalid = 0;
        }
        if (w_done) {
            t->s_axi_wvalid = 0;
        }
        sim->low();
    }
    waited = 0;
    while (!t->s_axi_bvalid) {
        if (++waited > kAxiTimeoutCycles) {
            sim->idle_bus();
            sim->low();
            return PMQ_SIM_TIMEOUT;
        }
        sim->high();
        sim->low();
    }
    const int resp = t->s_axi_bresp;
    sim->high();
    t->s_axi_bready = 0;
    sim->low();
    return resp;
}

void pmq_sim_set_inputs(pmq_sim *sim, uint32_t levels) {
    const uint32_t mask = PMQ_SIM_N_INPUTS >= 32 ? 0xFFFFFFFFu : ((1u << PMQ_SIM_N_INPUTS) - 1u);
    sim->inputs = levels & mask;
    sim->top->btn = sim->inputs;
    sim->low();
}

int pmq_sim_schedule_input(pmq_sim *sim, uint64_t cycle, uint32_t input, int level) {
    if (input >= PMQ_SIM_N_INPUTS || (!sim->schedule.empty() && cycle < sim->schedule.back().cycle)) {
        return -1;
    }
    sim->schedule.push_back(PinChange{cycle, 1u << input, level != 0});
    return 0;
}

uint64_t pmq_sim_pending_inputs(const pmq_sim *sim) { return sim->schedule.size(); }

uint64_t pmq_sim_next_input_cycle(const pmq_sim *sim) {
    return sim->schedule.empty() ? UINT64_MAX : sim->schedule.front().cycle;
}

uint32_t pmq_sim_inputs(const pmq_sim *sim) { return sim->inputs; }

uint32_t pmq_sim_leds(const pmq_sim *sim) { return sim->top->led; }

int pmq_sim_irq(const pmq_sim *sim) { return sim->top->irq ? 1 : 0; }

uint32_t pmq_sim_clk_hz(void) { return PMQ_SIM_CLK_HZ; }
uint32_t pmq_sim_n_inputs(void) { return PMQ_SIM_N_INPUTS; }
uint32_t pmq_sim_n_leds(void) { return PMQ_SIM_N_LEDS; }

}  // extern "C"
