// The falling clock edge between two idle rising edges, for the C++ shims around the
// Verilated models (pmq_sim.cpp, pmq_base_sim.cpp).
//
// A shim's rising edge is one evaluation with the clock high. When nothing outside the
// model changes before the next rising edge, an evaluation with the clock low computes
// nothing new: the RTL has no falling-edge logic, and every combinational signal settled
// in the rising edge's own evaluation. That evaluation serves only to show Verilator the
// clock low, so that it sees the next rise as an edge, and it costs about a sixth of a
// clock (callgrind, pynq_mqtt_io at 6 inputs and 10 LEDs: 2,109 -> 1,776 instructions per
// clock). Verilator 5.006 (Debian 12, the pinned toolchain) keeps the clock's last
// evaluated level in the root's `__Vtrigrprev__TOP__s_axi_aclk`: clearing it with the
// clock port is exactly what that evaluation leaves behind.
//
// A Verilator that names it otherwise builds the slow way: `kFast` is false and the
// falling edge is evaluated. The sim crate's tests step a model each way through the
// same traffic and compare every output and register (and fail if `kFast` is off on the
// pinned toolchain), so the shortcut can neither drift from the full evaluation nor
// vanish unnoticed.
#ifndef PMQ_CLOCK_FALL_H
#define PMQ_CLOCK_FALL_H

#include <type_traits>
#include <utility>

template <class Root, class = void>
struct PmqClockFall {
    static constexpr bool kFast = false;
    static void forget_rise(Root *) {}
};

template <class Root>
struct PmqClockFall<Root, std::void_t<decltype(std::declval<Root &>().__Vtrigrprev__TOP__s_axi_aclk)>> {
    static constexpr bool kFast = true;
    static void forget_rise(Root *root) { root->__Vtrigrprev__TOP__s_axi_aclk = 0; }
};

// Takes the clock of `top` low after a rising edge with nothing else changed: without an
// evaluation when the model allows it and `exact` is false, with one otherwise.
template <class Top>
inline void pmq_clock_fall(Top *top, bool exact) {
    using Fall = PmqClockFall<std::remove_pointer_t<decltype(top->rootp)>>;
    top->s_axi_aclk = 0;
    if (Fall::kFast && !exact) {
        Fall::forget_rise(top->rootp);
    } else {
        top->eval();
    }
}

// Whether `Top`'s falling edge can skip its evaluation.
template <class Top>
constexpr bool pmq_clock_fall_fast() {
    return PmqClockFall<std::remove_pointer_t<decltype(std::declval<Top &>().rootp)>>::kFast;
}

#endif
