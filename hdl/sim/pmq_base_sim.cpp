// The C shim around the Verilated pynq_base_model (see pmq_base_sim.h): the same clock
// and AXI handshake discipline as pmq_sim.cpp, once per board layout (each layout is
// its own Verilated class, Vpynq_base_z1 and Vpynq_base_z2).
#include "pmq_base_sim.h"

#include <deque>
#include <memory>
#include <new>

#include "Vpynq_base_z1.h"
#include "Vpynq_base_z1___024root.h"
#include "Vpynq_base_z2.h"
#include "Vpynq_base_z2___024root.h"
#include "pmq_clock_fall.h"
#include "verilated.h"

namespace {
constexpr uint64_t kAxiTimeoutCycles = 1000;
constexpr uint64_t kResetCycles = 8;
constexpr uint32_t kInputMask = (1u << PMQ_BASE_SIM_N_INPUTS) - 1u;

struct PinChange {
    uint64_t cycle;
    uint32_t mask;
    bool level;
};
}  // namespace

// The handle: what the C interface needs of either layout.
struct pmq_base_sim {
    virtual ~pmq_base_sim() = default;
    virtual void step(uint64_t cycles) = 0;
    virtual uint64_t step_until_irq(uint64_t cycles) = 0;
    virtual int read(uint32_t addr, uint32_t *data) = 0;
    virtual int write(uint32_t addr, uint32_t data, uint8_t strb) = 0;
    virtual void drive_inputs() = 0;
    virtual void drive_other(uint32_t levels) = 0;
    virtual uint32_t leds() const = 0;
    virtual bool irq() const = 0;
    virtual bool fast_clock() const = 0;

    uint64_t cycles = 0;
    // Evaluate every falling edge of step(), as the tests' reference does.
    bool exact_clock = false;
    uint32_t inputs = 0;
    std::deque<PinChange> schedule;
};

namespace {

template <class Top>
struct Sim final : pmq_base_sim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Top> top;

    Sim() : ctx(new VerilatedContext), top(new Top{ctx.get(), "pynq_base_model"}) {
        idle_bus();
        top->btns = 0;
        top->sws = 0;
        top->intr_other = 0;
        top->s_axi_aresetn = 0;
        for (uint64_t i = 0; i < kResetCycles; ++i) {
            low();
            high();
        }
        low();
        top->s_axi_aresetn = 1;
        low();
    }
    ~Sim() override { top->final(); }

    void low() {
        top->s_axi_aclk = 0;
        top->eval();
    }
    void high() {
        if (!schedule.empty() && schedule.front().cycle <= cycles) {
            do {
                const PinChange &c = schedule.front();
                inputs = c.level ? (inputs | c.mask) : (inputs & ~c.mask);
                schedule.pop_front();
            } while (!schedule.empty() && schedule.front().cycle <= cycles);
            pins();
            low();
        }
        top->s_axi_aclk = 1;
        top->eval();
        ++cycles;
    }
    void pins() {
        top->btns = inputs & 0xFu;
        top->sws = (inputs >> 4) & 0x3u;
    }
    void idle_bus() {
        top->s_axi_awvalid = 0;
        top->s_axi_wvalid = 0;
        top->s_axi_bready = 0;
        top->s_axi_arvalid = 0;
        top->s_axi_rready = 0;
    }
    int timeout() {
        idle_bus();
        low();
        return PMQ_BASE_SIM_TIMEOUT;
    }

    void step(uint64_t n) override {
        for (uint64_t i = 0; i < n; ++i) {
            high();
            pmq_clock_fall(top.get(), exact_clock);
        }
    }
    uint64_t step_until_irq(uint64_t n) override {
        uint64_t done = 0;
        while (done < n && !top->irq) {
            high();
            pmq_clock_fall(top.get(), exact_clock);
            ++done;
        }
        return done;
    }
    int read(uint32_t addr, uint32_t *data) override {
        Top *t = top.get();
        t->s_axi_araddr = addr;
        t->s_axi_arvalid = 1;
        t->s_axi_rready = 1;
        low();
        uint64_t waited = 0;
        while (!t->s_axi_arready) {
            if (++waited > kAxiTimeoutCycles) {
                return timeout();
            }
            high();
            low();
        }
        high();
        t->s_axi_arvalid = 0;
        low();
        waited = 0;
        while (!t->s_axi_rvalid) {
            if (++waited > kAxiTimeoutCycles) {
                return timeout();
            }
            high();
            low();
        }
        *data = t->s_axi_rdata;
        const int resp = t->s_axi_rresp;
        high();
        t->s_axi_rready = 0;
        low();
        return resp;
    }
    int write(uint32_t addr, uint32_t data, uint8_t strb) override {
        Top *t = top.get();
        t->s_axi_awaddr = addr;
        t->s_axi_awvalid = 1;
        t->s_axi_wdata = data;
        t->s_axi_wstrb = strb & 0xF;
        t->s_axi_wvalid = 1;
        t->s_axi_bready = 1;
        low();
        uint64_t waited = 0;
        while (t->s_axi_awvalid || t->s_axi_wvalid) {
            if (++waited > kAxiTimeoutCycles) {
                return timeout();
            }
            const bool aw_done = t->s_axi_awvalid && t->s_axi_awready;
            const bool w_done = t->s_axi_wvalid && t->s_axi_wready;
            high();
            if (aw_done) {
                t->s_axi_awvalid = 0;
            }
            if (w_done) {
                t->s_axi_wvalid = 0;
            }
            low();
        }
        waited = 0;
        while (!t->s_axi_bvalid) {
            if (++waited > kAxiTimeoutCycles) {
                return timeout();
            }
            high();
            low();
        }
        const int resp = t->s_axi_bresp;
        high();
        t->s_axi_bready = 0;
        low();
        return resp;
    }
    void drive_inputs() override {
        pins();
        low();
    }
    void drive_other(uint32_t levels) override {
        top->intr_other = levels;
        low();
    }
    uint32_t leds() const override {
        return (static_cast<uint32_t>(top->leds) & 0xFu) |
               ((static_cast<uint32_t>(top->rgbleds) & 0x3Fu) << 4);
    }
    bool irq() const override { return top->irq != 0; }
    bool fast_clock() const override { return pmq_clock_fall_fast<Top>(); }
};

}  // namespace

extern "C" {

pmq_base_sim *pmq_base_sim_create(int z2) {
    if (z2 != 0) {
        return new (std::nothrow) Sim<Vpynq_base_z2>;
    }
    return new (std::nothrow) Sim<Vpynq_base_z1>;
}

void pmq_base_sim_destroy(pmq_base_sim *sim) { delete sim; }

int pmq_base_sim_fast_clock(const pmq_base_sim *sim) { return sim->fast_clock() ? 1 : 0; }

void pmq_base_sim_set_exact_clock(pmq_base_sim *sim, int exact) { sim->exact_clock = exact != 0; }

void pmq_base_sim_step(pmq_base_sim *sim, uint64_t cycles) { sim->step(cycles); }

uint64_t pmq_base_sim_step_until_irq(pmq_base_sim *sim, uint64_t cycles) {
    return sim->step_until_irq(cycles);
}

uint64_t pmq_base_sim_cycles(const pmq_base_sim *sim) { return sim->cycles; }

int pmq_base_sim_axi_read(pmq_base_sim *sim, uint32_t addr, uint32_t *data) {
    return sim->read(addr, data);
}

int pmq_base_sim_axi_write(pmq_base_sim *sim, uint32_t addr, uint32_t data, uint8_t strb) {
    return sim->write(addr, data, strb);
}

void pmq_base_sim_set_inputs(pmq_base_sim *sim, uint32_t levels) {
    sim->inputs = levels & kInputMask;
    sim->drive_inputs();
}

int pmq_base_sim_schedule_input(pmq_base_sim *sim, uint64_t cycle, uint32_t input, int level) {
    if (input >= PMQ_BASE_SIM_N_INPUTS ||
        (!sim->schedule.empty() && cycle < sim->schedule.back().cycle)) {
        return -1;
    }
    sim->schedule.push_back(PinChange{cycle, 1u << input, level != 0});
    return 0;
}

uint64_t pmq_base_sim_pending_inputs(const pmq_base_sim *sim) { return sim->schedule.size(); }

uint64_t pmq_base_sim_next_input_cycle(const pmq_base_sim *sim) {
    return sim->schedule.empty() ? UINT64_MAX : sim->schedule.front().cycle;
}

uint32_t pmq_base_sim_inputs(const pmq_base_sim *sim) { return sim->inputs; }

uint32_t pmq_base_sim_leds(const pmq_base_sim *sim) { return sim->leds(); }

void pmq_base_sim_set_other_irqs(pmq_base_sim *sim, uint32_t levels) { sim->drive_other(levels); }

int pmq_base_sim_irq(const pmq_base_sim *sim) { return sim->irq() ? 1 : 0; }

}  // extern "C"
