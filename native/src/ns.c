/* Stationary noise suppressor: STFT Wiener gain with a minimum-statistics noise estimate. */
#include "dsp.h"
#include "ea/frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_BINS (EA_NS_FRAME / 2 + 1)
#define N_SUB 8              /* sub-windows of the minimum search */
#define SMOOTH_ALPHA 0.80f   /* periodogram smoothing before the minimum search */
#define MIN_BIAS 1.75f       /* mean / expected minimum of the smoothed periodogram (calibrated) */
#define TINY 1e-20f

struct ea_ns {
    ea_ns_params prm;
    float gain_floor;
    int sub_len;         /* frames per sub-window */
    int sub_count;       /* frames in the current sub-window */
    int sub_pos;         /* ring position in minbuf */
    int pos;             /* samples of the current hop received */
    int64_t frames;      /* frames analysed */
    float window[EA_NS_FRAME]; /* sqrt-Hann, used for analysis and synthesis */
    float ana[EA_NS_FRAME];
    float tmp[EA_NS_FRAME];
    float ola[EA_NS_FRAME];
    float outq[EA_NS_HOP];
    float power[N_BINS];
    float smooth[N_BINS];
    float actmin[N_BINS];
    float minbuf[N_SUB][N_BINS];
    float prev[N_BINS];  /* G^2 * gamma of the previous frame (decision-directed term) */
    ea_cpx spec[N_BINS];
    ea_rfft_plan fft;
};

void ea_ns_default_params(ea_ns_params *p)
{
    if (!p)
        return;
    p->max_attenuation_db = 15.0f;
    p->noise_window_s = 1.5f;
    p->dd_alpha = 0.95f;
    p->overestimate = 1.0f;
}

void ea_ns_destroy(ea_ns *h)
{
    if (!h)
        return;
    ea_rfft_free(&h->fft);
    free(h);
}

int ea_ns_reset(ea_ns *h)
{
    if (!h)
        return EA_EINVAL;
    h->sub_count = 0;
    h->sub_pos = 0;
    h->pos = 0;
    h->frames = 0;
    memset(h->ana, 0, sizeof(h->ana));
    memset(h->ola, 0, sizeof(h->ola));
    memset(h->outq, 0, sizeof(h->outq));
    memset(h->prev, 0, sizeof(h->prev));
    for (int k = 0; k < N_BINS; k++) {
        h->actmin[k] = INFINITY;
        for (int s = 0; s < N_SUB; s++)
            h->minbuf[s][k] = INFINITY;
    }
    return EA_OK;
}

int ea_ns_create(const ea_ns_params *params, ea_ns **out)
{
    if (!out)
        return EA_EINVAL;
    *out = NULL;
    ea_ns_params p;
    if (params)
        p = *params;
    else
        ea_ns_default_params(&p);
    if (!(p.max_attenuation_db >= 0.0f && p.max_attenuation_db <= 60.0f) ||
        !(p.noise_window_s >= 0.3f && p.noise_window_s <= 10.0f) || !(p.dd_alpha >= 0.0f && p.dd_alpha <= 0.999f) ||
        !(p.overestimate >= 0.5f && p.overestimate <= 4.0f))
        return EA_EINVAL;
    ea_ns *h = calloc(1, sizeof(*h));
    if (!h)
        return EA_ENOMEM;
    if (ea_rfft_init(&h->fft, EA_NS_FRAME, 1)) {
        ea_ns_destroy(h);
        return EA_ENOMEM;
    }
    h->prm = p;
    h->gain_floor = powf(10.0f, -p.max_attenuation_db / 20.0f);
    const double frames = p.noise_window_s * EA_NS_SAMPLE_RATE_HZ / EA_NS_HOP;
    h->sub_len = (int)ceil(frames / N_SUB);
    if (h->sub_len < 1)
        h->sub_len = 1;
    for (int i = 0; i < EA_NS_FRAME; i++) /* periodic Hann^(1/2): squares sum to 1 at 50 % overlap */
        h->window[i] = (float)sqrt(0.5 - 0.5 * cos(6.283185307179586 * (double)i / EA_NS_FRAME));
    ea_ns_reset(h);
    *out = h;
    return EA_OK;
}

/* Analyse ana[], apply the gain, overlap-add; the first hop of ola[] is then complete -> outq. */
static void process_frame(ea_ns *h)
{
    for (int i = 0; i < EA_NS_FRAME; i++)
        h->tmp[i] = h->ana[i] * h->window[i];
    ea_rfft_forward(&h->fft, h->tmp, h->spec);
    /* Frame 0 is half zero history: it would pin the minimum too low for a whole window, so the
     * statistics start at frame 1 (frame 0 is attenuated as noise). */
    const int first = h->frames <= 1;
    for (int k = 0; k < N_BINS; k++) {
        const float p = h->spec[k].re * h->spec[k].re + h->spec[k].im * h->spec[k].im;
        h->power[k] = p;
        h->smooth[k] = first ? p : SMOOTH_ALPHA * h->smooth[k] + (1.0f - SMOOTH_ALPHA) * p;
        if (h->frames > 0 && h->smooth[k] < h->actmin[k])
            h->actmin[k] = h->smooth[k];
    }
    const float alpha = h->prm.dd_alpha, floor2 = h->gain_floor * h->gain_floor;
    const float scale = MIN_BIAS * h->prm.overestimate;
    for (int k = 0; k < N_BINS; k++) {
        float mn = h->frames == 0 ? h->power[k] : h->actmin[k];
        for (int s = 0; s < N_SUB; s++)
            mn = h->minbuf[s][k] < mn ? h->minbuf[s][k] : mn;
        const float noise = scale * mn + TINY;
        const float gamma = h->power[k] / noise;
        float xi = alpha * h->prev[k] + (1.0f - alpha) * (gamma > 1.0f ? gamma - 1.0f : 0.0f);
        if (xi < floor2)
            xi = floor2;
        float g = xi / (1.0f + xi);
        if (g < h->gain_floor)
            g = h->gain_floor;
        h->prev[k] = g * g * gamma;
        h->spec[k].re *= g;
        h->spec[k].im *= g;
    }
    if (++h->sub_count >= h->sub_len) { /* close the sub-window */
        memcpy(h->minbuf[h->sub_pos], h->actmin, sizeof(h->actmin));
        h->sub_pos = (h->sub_pos + 1) % N_SUB;
        h->sub_count = 0;
        for (int k = 0; k < N_BINS; k++)
            h->actmin[k] = h->smooth[k];
    }
    h->frames++;
    ea_rfft_inverse(&h->fft, h->spec, h->tmp);
    for (int i = 0; i < EA_NS_FRAME; i++)
        h->ola[i] += h->tmp[i] * h->window[i];
    memcpy(h->outq, h->ola, EA_NS_HOP * sizeof(float));
    memmove(h->ola, h->ola + EA_NS_HOP, (EA_NS_FRAME - EA_NS_HOP) * sizeof(float));
    memset(h->ola + EA_NS_FRAME - EA_NS_HOP, 0, EA_NS_HOP * sizeof(float));
    memmove(h->ana, h->ana + EA_NS_HOP, (EA_NS_FRAME - EA_NS_HOP) * sizeof(float));
}

/* n <= EA_NS_HOP - pos samples: in goes into the analysis buffer, out comes from the output queue. */
static void run_segment(ea_ns *h, const float *in, float *out, int n)
{
    memcpy(h->ana + (EA_NS_FRAME - EA_NS_HOP) + h->pos, in, (size_t)n * sizeof(float));
    memcpy(out, h->outq + h->pos, (size_t)n * sizeof(float));
    h->pos += n;
    if (h->pos == EA_NS_HOP) {
        process_frame(h);
        h->pos = 0;
    }
}

int ea_ns_process_f32(ea_ns *h, const float *in, float *out, size_t n)
{
    if (!h || (n && (!in || !out)))
        return EA_EINVAL;
    if (!ea_all_finite(in, n))
        return EA_ENONFINITE;
    size_t i = 0;
    while (i < n) {
        size_t seg = (size_t)(EA_NS_HOP - h->pos);
        if (seg > n - i)
            seg = n - i;
        run_segment(h, in + i, out + i, (int)seg);
        i += seg;
    }
    return EA_OK;
}

int ea_ns_process_i16(ea_ns *h, const int16_t *in, int16_t *out, size_t n)
{
    if (!h || (n && (!in || !out)))
        return EA_EINVAL;
    float fin[EA_NS_HOP], fout[EA_NS_HOP];
    size_t i = 0;
    while (i < n) {
        size_t seg = (size_t)(EA_NS_HOP - h->pos);
        if (seg > n - i)
            seg = n - i;
        for (size_t j = 0; j < seg; j++)
            fin[j] = (float)in[i + j];
        run_segment(h, fin, fout, (int)seg);
        for (size_t j = 0; j < seg; j++)
            out[i + j] = ea_sat16((double)fout[j]);
        i += seg;
    }
    return EA_OK;
}
