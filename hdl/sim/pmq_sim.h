/*
 * pmq_sim: a plain C interface to the Verilated pynq_mqtt_io model.
 *
 * One handle is one simulated peripheral with its own clock. Nothing here is
 * thread-safe: the caller serializes every call on a handle.
 * Time advances only inside pmq_sim_step() and the AXI transactions (each of which
 * takes the few clock cycles the RTL needs, counted in pmq_sim_cycles()).
 */
#ifndef PMQ_SIM_H
#define PMQ_SIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pmq_sim pmq_sim;

/* AXI response codes, plus our own for a bus that never answered. */
#define PMQ_SIM_OKAY 0
#define PMQ_SIM_SLVERR 2
#define PMQ_SIM_DECERR 3
#define PMQ_SIM_TIMEOUT (-1)

/* Creates the model and holds it in reset for a few cycles, then reads ID and PARAMS
 * (offsets from pynq_mqtt_io_regs.h). NULL on failure, or if the model is not the IP
 * that header describes, built with pmq_sim_n_inputs() inputs and pmq_sim_n_leds() LEDs. */
pmq_sim *pmq_sim_create(void);
/* Destroys the model; the handle is invalid afterwards. */
void pmq_sim_destroy(pmq_sim *sim);

/* Advances the clock by `cycles` rising edges with the AXI bus idle. */
void pmq_sim_step(pmq_sim *sim, uint64_t cycles);
/* Advances at most `cycles` rising edges, stopping early after the edge that raised
 * irq (or at once if it is already high). Returns the cycles advanced. */
uint64_t pmq_sim_step_until_irq(pmq_sim *sim, uint64_t cycles);
/* 1 if pmq_sim_step() and pmq_sim_step_until_irq() take the clock low without an
 * evaluation (pmq_clock_fall.h: the build's Verilator exposes the clock's edge detector),
 * 0 if they evaluate every falling edge. */
int pmq_sim_fast_clock(void);
/* Nonzero: from now on, evaluate every falling edge in pmq_sim_step() and
 * pmq_sim_step_until_irq(), the reference the fast clock is tested against. */
void pmq_sim_set_exact_clock(pmq_sim *sim, int exact);
/* Rising clock edges since creation. */
uint64_t pmq_sim_cycles(const pmq_sim *sim);

/* One complete AXI4-Lite read: returns the response code (PMQ_SIM_OKAY, ...). */
int pmq_sim_axi_read(pmq_sim *sim, uint32_t addr, uint32_t *data);
/* One complete AXI4-Lite write with byte strobes: returns the response code. */
int pmq_sim_axi_write(pmq_sim *sim, uint32_t addr, uint32_t data, uint8_t strb);

/* Drives the raw (asynchronous) button pins, bit i = btn[i]. */
void pmq_sim_set_inputs(pmq_sim *sim, uint32_t levels);
/* Schedules button pin `input` to take `level` (0 or 1) just before rising edge number
 * `cycle` + 1 (that is, when pmq_sim_cycles() == cycle), whether the clock then runs in
 * pmq_sim_step() or inside an AXI transaction. Changes must be scheduled in
 * non-decreasing cycle order. Returns 0, or -1 if out of order or no such input. */
int pmq_sim_schedule_input(pmq_sim *sim, uint64_t cycle, uint32_t input, int level);
/* Scheduled pin changes not yet applied. */
uint64_t pmq_sim_pending_inputs(const pmq_sim *sim);
/* The cycle of the next scheduled pin change, or UINT64_MAX when none is. */
uint64_t pmq_sim_next_input_cycle(const pmq_sim *sim);
/* The button pins as last driven. */
uint32_t pmq_sim_inputs(const pmq_sim *sim);
/* The led pins, bit i = led[i]. */
uint32_t pmq_sim_leds(const pmq_sim *sim);
/* The irq pin: 1 high, 0 low. */
int pmq_sim_irq(const pmq_sim *sim);

/* Build parameters the model was verilated with. */
uint32_t pmq_sim_clk_hz(void);
uint32_t pmq_sim_n_inputs(void);
uint32_t pmq_sim_n_leds(void);

#ifdef __cplusplus
}
#endif

#endif /* PMQ_SIM_H */
