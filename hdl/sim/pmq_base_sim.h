/*
 * pmq_base_sim: a plain C interface to the Verilated pynq_base_model, the behavioural
 * MODEL (not Xilinx's IP) of the part of PYNQ's stock base overlay that `--board base`
 * uses: AXI GPIO blocks for switches, buttons, RGB LEDs and LEDs, and the AXI INTC.
 *
 * Both boards' interrupt-bit layouts are built: PYNQ-Z1 (buttons 11, switches 12) and
 * PYNQ-Z2 (buttons 13, switches 14). AXI addresses are the base overlay's physical
 * ones (0x4120_0000 ...). Pins are numbered as the pynq_mqtt overlay numbers them:
 * inputs 0-3 are BTN0-3, 4-5 are SW0-1; LEDs 0-3 are LD0-3, 4-9 are the RGB GPIO's
 * bits 0-5 (LD4 blue/green/red, LD5 blue/green/red).
 *
 * Same rules as pmq_sim.h: nothing is thread-safe, time advances only in the step
 * calls and the AXI transactions.
 */
#ifndef PMQ_BASE_SIM_H
#define PMQ_BASE_SIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pmq_base_sim pmq_base_sim;

#define PMQ_BASE_SIM_OKAY 0
#define PMQ_BASE_SIM_TIMEOUT (-1)
#define PMQ_BASE_SIM_N_INPUTS 6
#define PMQ_BASE_SIM_N_LEDS 10

/* Creates the model of PYNQ-Z2 (z2 != 0) or PYNQ-Z1 and runs its reset; NULL on
 * failure. */
pmq_base_sim *pmq_base_sim_create(int z2);
void pmq_base_sim_destroy(pmq_base_sim *sim);

/* As pmq_sim_fast_clock, for this handle's layout. */
int pmq_base_sim_fast_clock(const pmq_base_sim *sim);
/* As pmq_sim_set_exact_clock. */
void pmq_base_sim_set_exact_clock(pmq_base_sim *sim, int exact);
void pmq_base_sim_step(pmq_base_sim *sim, uint64_t cycles);
/* As pmq_sim_step_until_irq. */
uint64_t pmq_base_sim_step_until_irq(pmq_base_sim *sim, uint64_t cycles);
uint64_t pmq_base_sim_cycles(const pmq_base_sim *sim);

int pmq_base_sim_axi_read(pmq_base_sim *sim, uint32_t addr, uint32_t *data);
int pmq_base_sim_axi_write(pmq_base_sim *sim, uint32_t addr, uint32_t data, uint8_t strb);

/* Drives the input pins, bit i = input i (see above). */
void pmq_base_sim_set_inputs(pmq_base_sim *sim, uint32_t levels);
/* As pmq_sim_schedule_input. */
int pmq_base_sim_schedule_input(pmq_base_sim *sim, uint64_t cycle, uint32_t input, int level);
uint64_t pmq_base_sim_pending_inputs(const pmq_base_sim *sim);
/* As pmq_sim_next_input_cycle. */
uint64_t pmq_base_sim_next_input_cycle(const pmq_base_sim *sim);
uint32_t pmq_base_sim_inputs(const pmq_base_sim *sim);
/* The LED pins, bit i = LED i (see above). */
uint32_t pmq_base_sim_leds(const pmq_base_sim *sim);
/* Drives the interrupt-controller inputs that are not ours (a notebook's devices). */
void pmq_base_sim_set_other_irqs(pmq_base_sim *sim, uint32_t levels);
/* The irq pin (IRQ_F2P[0], the `fabric` UIO device's line). */
int pmq_base_sim_irq(const pmq_base_sim *sim);

#ifdef __cplusplus
}
#endif

#endif /* PMQ_BASE_SIM_H */
