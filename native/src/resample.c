/* Streaming polyphase rational resampler with a Kaiser-windowed sinc prototype. */
#include "dsp.h"
#include "ea/frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_L 1024
#define BLOCK 4096
#define ATTEN_DB 90.0         /* design stop-band attenuation */
#define PASS_FRACTION 0.875   /* pass-band edge as a fraction of the stop-band edge */

struct ea_resampler {
    int in_rate, out_rate;
    int L, M, K;       /* up factor, down factor, taps per phase */
    int delay;         /* output samples */
    float *taps;       /* L phases x K taps, each phase reversed (oldest input first) */
    float *buf;        /* K - 1 + BLOCK input samples */
    int buf_len;
    int64_t buf_start; /* stream index of buf[0] */
    int64_t base;      /* input index of the newest sample the next output uses */
    int phase;         /* polyphase branch of the next output */
};

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static double bessel_i0(double x)
{
    double sum = 1.0, term = 1.0, q = x * x / 4.0;
    for (int k = 1; k < 500; k++) {
        term *= q / ((double)k * (double)k);
        sum += term;
        if (term < 1e-17 * sum)
            break;
    }
    return sum;
}

void ea_resampler_destroy(ea_resampler *h)
{
    if (!h)
        return;
    free(h->taps);
    free(h->buf);
    free(h);
}

int ea_resampler_reset(ea_resampler *h)
{
    if (!h)
        return EA_EINVAL;
    memset(h->buf, 0, (size_t)(h->K - 1 + BLOCK) * sizeof(float));
    h->buf_len = h->K - 1; /* zero history before the stream */
    h->buf_start = -(int64_t)(h->K - 1);
    h->base = 0;
    h->phase = 0;
    return EA_OK;
}

int ea_resampler_create(int in_rate_hz, int out_rate_hz, ea_resampler **out)
{
    if (!out)
        return EA_EINVAL;
    *out = NULL;
    if (in_rate_hz < 1000 || in_rate_hz > 384000 || out_rate_hz < 1000 || out_rate_hz > 384000)
        return EA_ERATE;
    const int g = gcd(in_rate_hz, out_rate_hz);
    const int L = out_rate_hz / g, M = in_rate_hz / g;
    if (L > MAX_L)
        return EA_ERATE;
    ea_resampler *h = calloc(1, sizeof(*h));
    if (!h)
        return EA_ENOMEM;
    h->in_rate = in_rate_hz;
    h->out_rate = out_rate_hz;
    h->L = L;
    h->M = M;
    double *proto = NULL;
    int n_taps;
    if (L == 1 && M == 1) {
        n_taps = 1;
        h->delay = 0;
        proto = malloc(sizeof(double));
        if (proto)
            proto[0] = 1.0;
    } else {
        const double fs_up = (double)in_rate_hz * (double)L;
        const double f_stop = 0.5 * (double)(in_rate_hz < out_rate_hz ? in_rate_hz : out_rate_hz);
        const double f_pass = PASS_FRACTION * f_stop;
        const double fc = 0.5 * (f_pass + f_stop) / fs_up; /* cycles per up-rate sample */
        const double dw = 6.283185307179586 * (f_stop - f_pass) / fs_up;
        const double beta = 0.1102 * (ATTEN_DB - 8.7);
        const double half = (ATTEN_DB - 8.0) / (2.285 * dw) / 2.0;
        /* Centre the prototype on a multiple of M so the delay is a whole number of output samples. */
        const int d_out = (int)ceil(half / (double)M);
        const int64_t D = (int64_t)d_out * M;
        n_taps = (int)(2 * D + 1);
        h->delay = d_out;
        proto = malloc((size_t)n_taps * sizeof(double));
        if (proto) {
            const double i0b = bessel_i0(beta);
            double sum = 0.0;
            for (int i = 0; i < n_taps; i++) {
                const double t = (double)(i - D);
                const double x = 6.283185307179586 * fc * t;
                const double sinc = t == 0.0 ? 2.0 * fc : sin(x) / (3.141592653589793 * t);
                const double r = t / (double)D;
                const double win = bessel_i0(beta * sqrt(fmax(0.0, 1.0 - r * r))) / i0b;
                proto[i] = sinc * win;
                sum += proto[i];
            }
            for (int i = 0; i < n_taps; i++)
                proto[i] *= (double)L / sum; /* unity gain at DC after zero-stuffing by L */
        }
    }
    h->K = (n_taps + L - 1) / L;
    h->taps = calloc((size_t)L * (size_t)h->K, sizeof(float));
    h->buf = calloc((size_t)(h->K - 1 + BLOCK), sizeof(float));
    if (!proto || !h->taps || !h->buf) {
        free(proto);
        ea_resampler_destroy(h);
        return EA_ENOMEM;
    }
    for (int p = 0; p < L; p++)
        for (int k = 0; k < h->K; k++) {
            const int64_t i = (int64_t)p + (int64_t)k * L;
            h->taps[(size_t)p * h->K + (size_t)(h->K - 1 - k)] = i < n_taps ? (float)proto[i] : 0.0f;
        }
    free(proto);
    ea_resampler_reset(h);
    *out = h;
    return EA_OK;
}

int ea_resampler_delay(const ea_resampler *h) { return h ? h->delay : EA_EINVAL; }

/* Outputs whose newest input index is < n_total_in (stream count), minus those already made. */
static size_t outputs_until(const ea_resampler *h, int64_t n_total_in)
{
    const int64_t u_next = h->base * h->L + h->phase, u_lim = n_total_in * h->L;
    if (u_next >= u_lim)
        return 0;
    return (size_t)((u_lim - u_next + h->M - 1) / h->M);
}

size_t ea_resampler_output_for(const ea_resampler *h, size_t n_in)
{
    if (!h)
        return 0;
    return outputs_until(h, h->buf_start + h->buf_len + (int64_t)n_in);
}

/* Make outputs from what is in buf (at most max_out); returns how many. */
static size_t produce(ea_resampler *h, float *out, size_t max_out)
{
    const int64_t end = h->buf_start + h->buf_len;
    const int K = h->K;
    size_t n = 0;
    while (n < max_out && h->base < end) {
        const float *x = h->buf + (h->base - h->buf_start) - (K - 1);
        const float *c = h->taps + (size_t)h->phase * (size_t)K;
        /* Eight independent partial sums: the loop vectorises without -ffast-math. */
        float acc[8] = {0};
        int k = 0;
        for (; k + 8 <= K; k += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += c[k + j] * x[k + j];
        for (; k < K; k++)
            acc[0] += c[k] * x[k];
        out[n++] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        h->phase += h->M;
        h->base += h->phase / h->L;
        h->phase %= h->L;
    }
    return n;
}

/* Drop all but the K - 1 newest samples. */
static void compact(ea_resampler *h)
{
    const int keep = h->K - 1, drop = h->buf_len - keep;
    if (drop <= 0)
        return;
    memmove(h->buf, h->buf + drop, (size_t)keep * sizeof(float));
    h->buf_len = keep;
    h->buf_start += drop;
}

/* Append n samples (x == NULL: zeros) and produce up to max_out outputs. */
static size_t feed(ea_resampler *h, const float *x, size_t n, float *out, size_t max_out)
{
    size_t pos = 0, written = 0;
    while (pos < n) {
        size_t room = (size_t)(h->K - 1 + BLOCK - h->buf_len);
        size_t take = n - pos < room ? n - pos : room;
        if (x)
            memcpy(h->buf + h->buf_len, x + pos, take * sizeof(float));
        else
            memset(h->buf + h->buf_len, 0, take * sizeof(float));
        h->buf_len += (int)take;
        pos += take;
        written += produce(h, out + written, max_out - written);
        compact(h);
    }
    return written;
}

int ea_resampler_process(ea_resampler *h, const float *in, size_t n_in, float *out, size_t out_cap,
                         size_t *n_out)
{
    if (!h || !n_out || (n_in && !in))
        return EA_EINVAL;
    const size_t need = ea_resampler_output_for(h, n_in);
    if (need > out_cap || (need && !out))
        return EA_ESPACE;
    if (!ea_all_finite(in, n_in))
        return EA_ENONFINITE;
    *n_out = feed(h, in, n_in, out, need);
    return EA_OK;
}

int ea_resampler_flush(ea_resampler *h, float *out, size_t out_cap, size_t *n_out)
{
    if (!h || !n_out)
        return EA_EINVAL;
    const size_t need = (size_t)h->delay;
    if (need > out_cap || (need && !out))
        return EA_ESPACE;
    size_t written = 0;
    while (written < need) /* zeros, in pieces; each piece adds at least one output */
        written += feed(h, NULL, (size_t)h->M / (size_t)h->L + 1, out + written, need - written);
    *n_out = written;
    return ea_resampler_reset(h);
}
