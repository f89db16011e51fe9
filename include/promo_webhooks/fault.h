/*
 * fault: the test fault points (PROMO_WEBHOOKS_TEST_FAULT), in one place.
 * A module names the point it has reached; when the configuration asks for
 * that point, the process ends there at once (exit status 137, as after a
 * kill -9), so the end-to-end tests can show what survives a crash at that
 * exact moment. Never set in production: the default is none.
 */
#ifndef PROMO_WEBHOOKS_FAULT_H
#define PROMO_WEBHOOKS_FAULT_H

#include "promo_webhooks/config.h"

/* Ends the process with _exit(137) when cfg->test_fault is point, after
 * logging what (a warning) so that the test sees where it stopped. */
void fault_point(const struct config *cfg, enum config_fault point,
		 const char *what);

#endif
