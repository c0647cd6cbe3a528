/* ABI version, error strings and the helpers every module shares (mel filterbank, checks). */
#include "dsp.h"
#include "ea/frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ea_abi_version(void) { return EA_ABI_VERSION; }

const char *ea_strerror(int code)
{
    switch (code) {
    case EA_OK: return "ok";
    case EA_EINVAL: return "invalid argument";
    case EA_ENOMEM: return "out of memory";
    case EA_ESPACE: return "output buffer too small";
    case EA_ENONFINITE: return "input contains NaN or Inf";
    case EA_ERATE: return "sample rate not supported";
    default: return "unknown error";
    }
}

int ea_all_finite(const float *x, size_t n)
{
    /* Branch-free accumulation so the loop vectorises; x - x is NaN for NaN and +-Inf. */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += x[i] - x[i];
    return acc == 0.0f;
}

short ea_sat16(double v)
{
    double r = nearbyint(v);
    if (r > 32767.0)
        return 32767;
    if (r < -32768.0)
        return -32768;
    return (short)r;
}

/* Slaney's auditory-toolbox mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above. */
static double hz_to_mel(double f)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, logstep = log(6.4) / 27.0;
    if (f < min_log_hz)
        return f / f_sp;
    return min_log_hz / f_sp + log(f / min_log_hz) / logstep;
}

static double mel_to_hz(double m)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, logstep = log(6.4) / 27.0;
    const double min_log_mel = min_log_hz / f_sp;
    if (m < min_log_mel)
        return f_sp * m;
    return min_log_hz * exp(logstep * (m - min_log_mel));
}

void ea_melbank_free(ea_melbank *m)
{
    free(m->first);
    free(m->count);
    free(m->offset);
    free(m->w);
    m->first = m->count = m->offset = NULL;
    m->w = NULL;
}

int ea_melbank_init(ea_melbank *m, int sample_rate_hz, int n_fft, int n_bands, double f_min_hz, double f_max_hz)
{
    const int n_bins = n_fft / 2 + 1;
    m->n_bands = n_bands;
    m->first = calloc((size_t)n_bands, sizeof(int));
    m->count = calloc((size_t)n_bands, sizeof(int));
    m->offset = calloc((size_t)n_bands, sizeof(int));
    m->w = calloc((size_t)n_bands * (size_t)n_bins, sizeof(float));
    double *edges = malloc((size_t)(n_bands + 2) * sizeof(double));
    if (!m->first || !m->count || !m->offset || !m->w || !edges) {
        free(edges);
        ea_melbank_free(m);
        return -2;
    }
    const double mel_lo = hz_to_mel(f_min_hz), mel_hi = hz_to_mel(f_max_hz);
    for (int i = 0; i < n_bands + 2; i++)
        edges[i] = mel_to_hz(mel_lo + (mel_hi - mel_lo) * (double)i / (double)(n_bands + 1));
    int off = 0;
    for (int b = 0; b < n_bands; b++) {
        const double lo = edges[b], mid = edges[b + 1], hi = edges[b + 2];
        const double enorm = 2.0 / (hi - lo);
        int first = -1, last = -1;
        for (int k = 0; k < n_bins; k++) {
            const double f = (double)k * (double)sample_rate_hz / (double)n_fft;
            const double up = (f - lo) / (mid - lo), down = (hi - f) / (hi - mid);
            const double w = fmax(0.0, fmin(up, down));
            if (w > 0.0) {
                if (first < 0)
                    first = k;
                last = k;
            }
        }
        if (first < 0) { /* a band narrower than a bin: keep it empty (always the floor) */
            first = 0;
            last = -1;
        }
        m->first[b] = first;
        m->count[b] = last - first + 1;
        m->offset[b] = off;
        for (int k = first; k <= last; k++) {
            const double f = (double)k * (double)sample_rate_hz / (double)n_fft;
            const double up = (f - lo) / (mid - lo), down = (hi - f) / (hi - mid);
            m->w[off++] = (float)(enorm * fmax(0.0, fmin(up, down)));
        }
    }
    free(edges);
    return 0;
}

int ea_melbank_bins(const ea_melbank *m)
{
    int top = 0;
    for (int b = 0; b < m->n_bands; b++)
        if (m->first[b] + m->count[b] > top)
            top = m->first[b] + m->count[b];
    return top;
}

void ea_melbank_apply(const ea_melbank *m, const float *power, float *bands)
{
    for (int b = 0; b < m->n_bands; b++) {
        const float *w = m->w + m->offset[b];
        const float *p = power + m->first[b];
        float acc = 0.0f;
        for (int k = 0; k < m->count[b]; k++)
            acc += w[k] * p[k];
        bands[b] = acc;
    }
}

/* log10(max(x, floor)) for n values, vectorisable: x = m 2^e with m in [sqrt(1/2), sqrt(2)),
 * ln m = 2 atanh(z), z = (m - 1) / (m + 1), |z| <= 0.1716, series to z^11 (error < 1e-9). */
void ea_log10_floor(const float *restrict in, float *restrict out, int n, float floor_v)
{
    const float ln2_over_ln10 = 0.30102999566398119521f, two_over_ln10 = 0.86858896380650365530f;
    for (int i = 0; i < n; i++) {
        float x = in[i] > floor_v ? in[i] : floor_v;
        uint32_t bits;
        memcpy(&bits, &x, sizeof(bits));
        /* Adding 2^23 - mantissa(sqrt 2) carries into the exponent exactly when m >= sqrt 2. */
        const int32_t ex = (int32_t)((bits + 0x004afb0du) >> 23) - 127;
        const uint32_t mbits = bits - ((uint32_t)ex << 23);
        float m;
        memcpy(&m, &mbits, sizeof(m));
        const float z = (m - 1.0f) / (m + 1.0f), z2 = z * z;
        const float poly = z * (1.0f + z2 * (1.0f / 3 + z2 * (1.0f / 5 + z2 * (1.0f / 7 + z2 * (1.0f / 9 + z2 * (1.0f / 11))))));
        out[i] = (float)ex * ln2_over_ln10 + two_over_ln10 * poly;
    }
}

