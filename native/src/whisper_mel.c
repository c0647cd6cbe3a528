/* Whisper log-mel spectrogram (see ea/frontend.h for the definition). */
#include "dsp.h"
#include "ea/frontend.h"

#include <math.h>
#include <stdlib.h>

#define N_BINS (EA_WHISPER_N_FFT / 2 + 1)
#define PAD (EA_WHISPER_N_FFT / 2)

struct ea_whisper_mel {
    float window[EA_WHISPER_N_FFT];
    float frame[EA_WHISPER_N_FFT];
    float power[N_BINS];
    float bands[EA_WHISPER_BANDS];
    int n_bins; /* power bins the mel bank reads */
    ea_rfft_plan fft;
    ea_melbank mel;
};

void ea_whisper_mel_destroy(ea_whisper_mel *h)
{
    if (!h)
        return;
    ea_rfft_free(&h->fft);
    ea_melbank_free(&h->mel);
    free(h);
}

int ea_whisper_mel_create(ea_whisper_mel **out)
{
    if (!out)
        return EA_EINVAL;
    *out = NULL;
    ea_whisper_mel *h = calloc(1, sizeof(*h));
    if (!h)
        return EA_ENOMEM;
    if (ea_rfft_init(&h->fft, EA_WHISPER_N_FFT, 1) ||
        ea_melbank_init(&h->mel, 16000, EA_WHISPER_N_FFT, EA_WHISPER_BANDS, 0.0, 8000.0)) {
        ea_whisper_mel_destroy(h);
        return EA_ENOMEM;
    }
    h->n_bins = ea_melbank_bins(&h->mel);
    for (int i = 0; i < EA_WHISPER_N_FFT; i++)
        h->window[i] = (float)(0.5 - 0.5 * cos(6.283185307179586 * (double)i / (double)EA_WHISPER_N_FFT));
    *out = h;
    return EA_OK;
}

size_t ea_whisper_mel_frames(size_t n_samples, size_t padding)
{
    return (n_samples + padding) / EA_WHISPER_HOP;
}

/* Sample i (may be outside [0, len)) of the zero-padded signal under numpy's 'reflect' padding. */
static float sample_at(const float *x, size_t n, size_t len, int64_t i)
{
    if (len == 1)
        i = 0;
    else if (i < 0 || i >= (int64_t)len) {
        const int64_t period = 2 * ((int64_t)len - 1);
        i %= period;
        if (i < 0)
            i += period;
        if (i >= (int64_t)len)
            i = period - i;
    }
    return (size_t)i < n ? x[i] : 0.0f;
}

int ea_whisper_mel_compute(ea_whisper_mel *h, const float *x, size_t n_samples, size_t padding, float *out,
                           size_t out_cap_frames, size_t *n_frames)
{
    if (!h || !n_frames || (n_samples && !x) || n_samples + padding < 1)
        return EA_EINVAL;
    const size_t nf = ea_whisper_mel_frames(n_samples, padding);
    if (nf > out_cap_frames || (nf && !out))
        return EA_ESPACE;
    if (!ea_all_finite(x, n_samples))
        return EA_ENONFINITE;
    const size_t len = n_samples + padding;
    float mx = -INFINITY;
    for (size_t t = 0; t < nf; t++) {
        const int64_t start = (int64_t)(t * EA_WHISPER_HOP) - PAD;
        if (start >= 0 && (size_t)start + EA_WHISPER_N_FFT <= n_samples) {
            const float *src = x + start;
            for (int i = 0; i < EA_WHISPER_N_FFT; i++)
                h->frame[i] = src[i] * h->window[i];
        } else {
            for (int i = 0; i < EA_WHISPER_N_FFT; i++)
                h->frame[i] = sample_at(x, n_samples, len, start + i) * h->window[i];
        }
        ea_rfft_power(&h->fft, h->frame, h->power, h->n_bins);
        ea_melbank_apply(&h->mel, h->power, h->bands);
        float logs[EA_WHISPER_BANDS];
        ea_log10_floor(h->bands, logs, EA_WHISPER_BANDS, 1e-10f);
        for (int b = 0; b < EA_WHISPER_BANDS; b++) {
            const float v = logs[b];
            out[(size_t)b * nf + t] = v;
            mx = v > mx ? v : mx;
        }
    }
    const float lo = mx - 8.0f;
    for (size_t i = 0; i < nf * EA_WHISPER_BANDS; i++)
        out[i] = ((out[i] > lo ? out[i] : lo) + 4.0f) * 0.25f;
    *n_frames = nf;
    return EA_OK;
}
