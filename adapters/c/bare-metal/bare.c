/*
 * Link proof: libnaslink_capi.a (thumbv7em-none-eabihf) in a bare-metal
 * C program for a Cortex-M7 (the Nucleo-F767ZI's memory map), built with
 * arm-none-eabi-gcc, no RTOS, no allocator. scripts/capi-bare-metal.sh
 * builds it twice, with and without -DBASELINE (the same program without
 * the library calls), and reports the difference: what naslink adds;
 * -DCFMS builds the CFMS variant instead of fnOS.
 *
 * It is linked, not run: the "network" is a volatile buffer a driver
 * would fill, and the clock a volatile tick counter.
 */
#include <stddef.h>
#include <stdint.h>

#ifndef BASELINE
#include "naslink.h"
#endif

/* Connection memory, caller-owned; CONN_MEMORY comes from the script
 * (naslink_fnos_size() for this target, rounded up). */
static _Alignas(8) uint8_t conn_memory[CONN_MEMORY];

/* Stand-ins for the Ethernet driver and the SysTick counter. */
volatile uint8_t rx_dma[536];
volatile size_t rx_len;
volatile uint8_t tx_fifo[536];
volatile uint32_t ticks_ms;

/* A hardware RNG would go here. */
static void hw_random(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(ticks_ms * 2654435761u >> (i % 24));
}

/* Firmware has no process to abort: stop here (a watchdog resets). */
void abort(void) {
    for (;;) {
    }
}

int main(void);

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;

void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    main();
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) const void *const vectors[2] = {
    &_estack,
    (const void *)Reset_Handler,
};

#ifdef BASELINE
int main(void) {
    for (;;) {
        conn_memory[ticks_ms % CONN_MEMORY] = rx_dma[0];
        tx_fifo[0] = conn_memory[rx_len % CONN_MEMORY];
        hw_random(NULL, conn_memory, 4);
    }
}
#else
int main(void) {
    naslink_conn *conn;
#ifdef CFMS
    naslink_cfms_config config = {
        .url = "ws://192.168.1.20:5104/",
        .user = "panel",
        .password = "secret",
        .now_ms = ticks_ms,
    };
    if (naslink_cfms_size() > sizeof conn_memory ||
        naslink_cfms_init(conn_memory, sizeof conn_memory, &config, hw_random, NULL, &conn) !=
            NASLINK_OK)
        abort();
#else
    naslink_fnos_config config = {
        .url = "ws://192.168.1.20:5666/websocket?type=main",
        .user = "panel",
        .password = "secret",
        .now_ms = ticks_ms,
    };
    if (naslink_fnos_size() > sizeof conn_memory ||
        naslink_fnos_init(conn_memory, sizeof conn_memory, &config, hw_random, NULL, &conn) !=
            NASLINK_OK)
        abort();
#endif
    naslink_reqid reqid;
    for (;;) {
        naslink_event ev;
        while (naslink_poll_event(conn, &ev) == NASLINK_OK && ev.kind != NASLINK_EVENT_NONE) {
#ifdef CFMS
            if (ev.kind == NASLINK_EVENT_LISTENER_REGISTERED || ev.kind == NASLINK_EVENT_LOGGED_IN)
                naslink_cfms_request(conn, ticks_ms, "list_directory", "{\"folder_id\":null}",
                                     &reqid);
#else
            if (ev.kind == NASLINK_EVENT_LOGGED_IN)
                naslink_fnos_request_panel(conn, ticks_ms, NASLINK_PANEL_RESMON_GEN, &reqid);
#endif
            if (ev.kind == NASLINK_EVENT_REPLY) {
                const uint8_t *v;
                size_t n;
                if (naslink_json_get(ev.json, ev.json_len, "data.item.cpuBusy", &v, &n) ==
                    NASLINK_OK)
                    tx_fifo[0] = v[0];
            }
            if (ev.kind == NASLINK_EVENT_CLOSED) naslink_deinit(conn);
        }
        const uint8_t *out;
        size_t len;
        while (naslink_poll_transmit(conn, ticks_ms, &out, &len) == NASLINK_OK && len > 0) {
            size_t n = len < sizeof tx_fifo ? len : sizeof tx_fifo;
            for (size_t i = 0; i < n; i++) tx_fifo[i] = out[i];
            naslink_advance_transmit(conn, n);
        }
        uint64_t at;
        naslink_poll_timeout(conn, &at);
        if (at != NASLINK_NO_TIMEOUT && ticks_ms >= at) naslink_handle_timeout(conn, ticks_ms);
        size_t used = 0;
        naslink_handle_input(conn, ticks_ms, (const uint8_t *)rx_dma, rx_len, &used);
        if (rx_len == 0 && ticks_ms == 0) naslink_handle_eof(conn, ticks_ms);
    }
}
#endif
