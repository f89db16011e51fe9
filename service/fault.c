/*
 * fault: test fault points. See include/promo_webhooks/fault.h.
 */
#include "promo_webhooks/fault.h"
#include "promo_webhooks/log.h"

#include <unistd.h>

void fault_point(const struct config *cfg, enum config_fault point,
		 const char *what)
{
	if (point == CONFIG_FAULT_NONE || cfg->test_fault != point)
		return;
	log_warn(what, "fault=%d", (int)point);
	_exit(137);
}
