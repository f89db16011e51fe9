/*
 * rfc3339: RFC 3339 date-times to and from Unix milliseconds (pure): the
 * events' times, the webhooks' and attempts' timestamps, the period
 * events' dates. See include/promo_webhooks/rfc3339.h.
 */
#include "promo_webhooks/rfc3339.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so no timegm() and no time_t range worries. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly n decimal digits at s. */
static int read_digits(const char *s, size_t n, int *out)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * date-time = YYYY-MM-DD ("T" / "t") hh:mm:ss [.frac] ("Z" / "z" / +hh:mm /
 * -hh:mm), RFC 3339 section 5.6. Fractions of any length are truncated to
 * milliseconds. A leap second (ss = 60) counts as the first second of the
 * next minute, as POSIX time has no room for it.
 */
int rfc3339_parse(const char *s, size_t len, int64_t *ms)
{
	int year, mon, day, hour, min, sec, frac_ms = 0, off_h = 0, off_m = 0;
	int off_sign = 0, scale = 100;
	size_t i;
	int64_t secs;

	if (len < 20)
		return -1;
	if (read_digits(s, 4, &year) < 0 || s[4] != '-' ||
	    read_digits(s + 5, 2, &mon) < 0 || s[7] != '-' ||
	    read_digits(s + 8, 2, &day) < 0 || (s[10] != 'T' && s[10] != 't') ||
	    read_digits(s + 11, 2, &hour) < 0 || s[13] != ':' ||
	    read_digits(s + 14, 2, &min) < 0 || s[16] != ':' ||
	    read_digits(s + 17, 2, &sec) < 0)
		return -1;
	i = 19;
	if (s[i] == '.') {
		size_t start = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			frac_ms += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == start)
			return -1;
	}
	if (i >= len)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		off_sign = s[i] == '+' ? 1 : -1;
		if (len - i < 6 || read_digits(s + i + 1, 2, &off_h) < 0 ||
		    s[i + 3] != ':' || read_digits(s + i + 4, 2, &off_m) < 0)
			return -1;
		i += 6;
	} else {
		return -1;
	}
	if (i != len)
		return -1;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
	    hour > 23 || min > 59 || sec > 60 || off_h > 23 || off_m > 59)
		return -1;
	secs = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 +
	       sec - off_sign * (off_h * 3600 + off_m * 60);
	*ms = secs * 1000 + frac_ms;
	return 0;
}

/* Writes v as exactly n decimal digits (zero-padded) at p. */
static void put_digits(char *p, unsigned v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void rfc3339_format(int64_t ms, char *out, size_t outlen)
{
	int64_t days, rem, year;
	int mon, day;

	days = ms / 86400000;
	rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	civil_from_days(days, &year, &mon, &day);
	/* Without printf in the common case: it runs once per logged attempt. */
	if (year >= 0 && year <= 9999 && outlen >= 25) {
		put_digits(out, (unsigned)year, 4);
		out[4] = '-';
		put_digits(out + 5, (unsigned)mon, 2);
		out[7] = '-';
		put_digits(out + 8, (unsigned)day, 2);
		out[10] = 'T';
		put_digits(out + 11, (unsigned)(rem / 3600000), 2);
		out[13] = ':';
		put_digits(out + 14, (unsigned)(rem / 60000 % 60), 2);
		out[16] = ':';
		put_digits(out + 17, (unsigned)(rem / 1000 % 60), 2);
		out[19] = '.';
		put_digits(out + 20, (unsigned)(rem % 1000), 3);
		out[23] = 'Z';
		out[24] = '\0';
		return;
	}
	snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (long long)year, mon, day, (int)(rem / 3600000),
		 (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
		 (int)(rem % 1000));
}
