/* DC removal / high-pass: 2nd-order Butterworth biquad, transposed direct form II in double. */
#include "dsp.h"
#include "ea/frontend.h"

#include <math.h>
#include <stdlib.h>

struct ea_highpass {
    double b0, b1, b2, a1, a2;
    double s1, s2;
};

int ea_highpass_create(double cutoff_hz, int sample_rate_hz, ea_highpass **out)
{
    if (!out)
        return EA_EINVAL;
    *out = NULL;
    if (sample_rate_hz < 1000 || sample_rate_hz > 384000)
        return EA_ERATE;
    if (!(cutoff_hz > 0.0) || !(cutoff_hz < 0.45 * (double)sample_rate_hz))
        return EA_EINVAL;
    ea_highpass *h = calloc(1, sizeof(*h));
    if (!h)
        return EA_ENOMEM;
    const double k = tan(3.141592653589793 * cutoff_hz / (double)sample_rate_hz); /* pre-warped */
    const double q = 1.4142135623730951;                                          /* 1 / Q, Q = 1/sqrt(2) */
    const double norm = 1.0 / (1.0 + q * k + k * k);
    h->b0 = norm;
    h->b1 = -2.0 * norm;
    h->b2 = norm;
    h->a1 = 2.0 * (k * k - 1.0) * norm;
    h->a2 = (1.0 - q * k + k * k) * norm;
    *out = h;
    return EA_OK;
}

void ea_highpass_destroy(ea_highpass *h) { free(h); }

int ea_highpass_reset(ea_highpass *h)
{
    if (!h)
        return EA_EINVAL;
    h->s1 = h->s2 = 0.0;
    return EA_OK;
}

static inline double step(ea_highpass *h, double x)
{
    const double y = h->b0 * x + h->s1;
    h->s1 = h->b1 * x - h->a1 * y + h->s2;
    h->s2 = h->b2 * x - h->a2 * y;
    return y;
}

int ea_highpass_process_f32(ea_highpass *h, const float *in, float *out, size_t n)
{
    if (!h || (n && (!in || !out)))
        return EA_EINVAL;
    if (!ea_all_finite(in, n))
        return EA_ENONFINITE;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)step(h, (double)in[i]);
    return EA_OK;
}

int ea_highpass_process_i16(ea_highpass *h, const int16_t *in, int16_t *out, size_t n)
{
    if (!h || (n && (!in || !out)))
        return EA_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = ea_sat16(step(h, (double)in[i]));
    return EA_OK;
}
