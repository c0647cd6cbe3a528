/* Streaming openWakeWord-compatible log-mel features (see ea/frontend.h for the definition). */
#include "dsp.h"
#include "ea/frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WIN_LEN 400
#define WIN_OFFSET 56 /* (512 - 400) / 2 */
#define N_BINS (EA_OWW_FRAME / 2 + 1)
#define BLOCK_FRAMES 8
#define FIRST_BLOCK_FRAMES 5 /* openWakeWord's first 1280-sample call yields 5 frames */
#define CLAMP_BELOW 8.0f     /* 80 dB in the transformed unit (dB / 10) */
#define BATCH 8              /* windowed frames staged before they are transformed */

struct ea_oww_mel {
    int clamp_mode;
    int fill;            /* samples in buf */
    int64_t n_in;        /* samples pushed since create/reset */
    int64_t n_computed;  /* frames computed */
    int64_t n_released;  /* frames handed to the caller */
    int block_fill;      /* computed frames waiting in block[] */
    int n_pending;       /* windowed frames waiting in pending[] */
    float buf[EA_OWW_FRAME];
    float pending[BATCH][EA_OWW_FRAME];
    float power[N_BINS];
    float bands[EA_OWW_BANDS];
    float window[EA_OWW_FRAME];
    float block[BLOCK_FRAMES * EA_OWW_BANDS];
    int n_bins; /* power bins the mel bank reads */
    ea_rfft_plan fft;
    ea_melbank mel;
};

void ea_oww_mel_destroy(ea_oww_mel *h)
{
    if (!h)
        return;
    ea_rfft_free(&h->fft);
    ea_melbank_free(&h->mel);
    free(h);
}

int ea_oww_mel_reset(ea_oww_mel *h)
{
    if (!h)
        return EA_EINVAL;
    h->fill = 0;
    h->n_in = 0;
    h->n_computed = 0;
    h->n_released = 0;
    h->block_fill = 0;
    h->n_pending = 0;
    memset(h->buf, 0, sizeof(h->buf));
    return EA_OK;
}

int ea_oww_mel_create(int clamp_mode, ea_oww_mel **out)
{
    if (!out || (clamp_mode != EA_OWW_CLAMP_NONE && clamp_mode != EA_OWW_CLAMP_BLOCKS))
        return EA_EINVAL;
    *out = NULL;
    ea_oww_mel *h = calloc(1, sizeof(*h));
    if (!h)
        return EA_ENOMEM;
    if (ea_rfft_init(&h->fft, EA_OWW_FRAME, 1) || ea_melbank_init(&h->mel, EA_OWW_SAMPLE_RATE_HZ, EA_OWW_FRAME,
                                                               EA_OWW_BANDS, 60.0, 3800.0)) {
        ea_oww_mel_destroy(h);
        return EA_ENOMEM;
    }
    h->clamp_mode = clamp_mode;
    h->n_bins = ea_melbank_bins(&h->mel);
    for (int i = 0; i < WIN_LEN; i++) /* periodic Hann: 0.5 - 0.5 cos(2 pi i / N) */
        h->window[WIN_OFFSET + i] = (float)(0.5 - 0.5 * cos(6.283185307179586 * (double)i / (double)WIN_LEN));
    ea_oww_mel_reset(h);
    *out = h;
    return EA_OK;
}

/* Frames released in total once `computed` frames exist. */
static int64_t released_total(int clamp_mode, int64_t computed)
{
    if (clamp_mode == EA_OWW_CLAMP_NONE)
        return computed;
    if (computed < FIRST_BLOCK_FRAMES)
        return 0;
    return FIRST_BLOCK_FRAMES + (computed - FIRST_BLOCK_FRAMES) / BLOCK_FRAMES * BLOCK_FRAMES;
}

static int64_t computed_total(int64_t n_in)
{
    return n_in < EA_OWW_FRAME ? 0 : (n_in - EA_OWW_FRAME) / EA_OWW_HOP + 1;
}

int ea_oww_mel_frames_for(const ea_oww_mel *h, size_t n_samples, size_t *n_frames)
{
    if (!h || !n_frames)
        return EA_EINVAL;
    int64_t after = released_total(h->clamp_mode, computed_total(h->n_in + (int64_t)n_samples));
    *n_frames = (size_t)(after - h->n_released);
    return EA_OK;
}

int64_t ea_oww_mel_frames_released(const ea_oww_mel *h) { return h ? h->n_released : -1; }

/* Window the frame in buf[] into the pending batch (zeros outside the 400-sample window stay zero). */
static void window_frame(float *restrict dst, const float *restrict src, const float *restrict win)
{
    for (int i = WIN_OFFSET; i < WIN_OFFSET + WIN_LEN; i++)
        dst[i] = src[i] * win[i];
}

static void stage_frame(ea_oww_mel *h)
{
    window_frame(h->pending[h->n_pending++], h->buf, h->window);
}

static void release_block(ea_oww_mel *h, float *out)
{
    const int n = h->block_fill * EA_OWW_BANDS;
    float mx = h->block[0];
    for (int i = 1; i < n; i++)
        mx = h->block[i] > mx ? h->block[i] : mx;
    const float floor_v = mx - CLAMP_BELOW;
    for (int i = 0; i < n; i++)
        out[i] = h->block[i] > floor_v ? h->block[i] : floor_v;
    h->n_released += h->block_fill;
    h->block_fill = 0;
}

/* Transform the staged frames and hand them on in stream order: straight to out (no clamp) or
 * through the block buffer (block clamp). Log-mel transformed: log10(max(p, 1e-10)) + 2. */
static size_t flush_pending(ea_oww_mel *h, float *out)
{
    const int nb = h->n_pending;
    size_t written = 0;
    for (int q = 0; q < nb; q++) {
        float *dst = h->clamp_mode == EA_OWW_CLAMP_NONE ? out + written * EA_OWW_BANDS
                                                         : h->block + h->block_fill * EA_OWW_BANDS;
        ea_rfft_power(&h->fft, h->pending[q], h->power, h->n_bins);
        ea_melbank_apply(&h->mel, h->power, h->bands);
        ea_log10_floor(h->bands, dst, EA_OWW_BANDS, 1e-10f);
        for (int b = 0; b < EA_OWW_BANDS; b++)
            dst[b] += 2.0f;
        const int64_t k = h->n_computed++; /* stream index of this frame */
        if (h->clamp_mode == EA_OWW_CLAMP_NONE) {
            written++;
            h->n_released++;
        } else if (++h->block_fill, (k + 1 - FIRST_BLOCK_FRAMES) % BLOCK_FRAMES == 0) {
            const int n_block = h->block_fill;
            release_block(h, out + written * EA_OWW_BANDS);
            written += (size_t)n_block;
        }
    }
    h->n_pending = 0;
    return written;
}

int ea_oww_mel_process(ea_oww_mel *h, const int16_t *pcm, size_t n_samples, float *out, size_t out_cap_frames,
                       size_t *n_frames)
{
    if (!h || !n_frames || (n_samples && !pcm))
        return EA_EINVAL;
    size_t need;
    ea_oww_mel_frames_for(h, n_samples, &need);
    if (need > out_cap_frames || (need && !out))
        return EA_ESPACE;
    size_t written = 0, pos = 0;
    while (pos < n_samples) {
        size_t take = (size_t)(EA_OWW_FRAME - h->fill);
        if (take > n_samples - pos)
            take = n_samples - pos;
        float *restrict dst = h->buf + h->fill;
        const int16_t *restrict src = pcm + pos;
        for (size_t i = 0; i < take; i++)
            dst[i] = (float)src[i];
        h->fill += (int)take;
        h->n_in += (int64_t)take;
        pos += take;
        if (h->fill < EA_OWW_FRAME)
            break;
        stage_frame(h);
        if (h->n_pending == BATCH)
            written += flush_pending(h, out + written * EA_OWW_BANDS);
        memmove(h->buf, h->buf + EA_OWW_HOP, (EA_OWW_FRAME - EA_OWW_HOP) * sizeof(float));
        h->fill = EA_OWW_FRAME - EA_OWW_HOP;
    }
    written += flush_pending(h, out + written * EA_OWW_BANDS);
    *n_frames = written;
    return EA_OK;
}
