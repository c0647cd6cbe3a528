/* C tests of the audio front end against golden vectors (made by gen_golden.py) and properties.
 * Usage: test_frontend GOLDEN_DIR. Exit status 0 when every check passes. */
#include "dsp.h"
#include "ea/frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static int g_fail, g_checks;
static const char *g_dir;

#define CHECK(cond, ...)                                                                                       \
    do {                                                                                                       \
        g_checks++;                                                                                            \
        if (!(cond)) {                                                                                         \
            g_fail++;                                                                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                               \
            fprintf(stderr, __VA_ARGS__);                                                                      \
            fputc('\n', stderr);                                                                               \
        }                                                                                                      \
    } while (0)

/* Reads a whole golden file; *n = number of elements of size elem. Caller frees. */
static void *load(const char *name, size_t elem, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FAIL cannot open golden file %s (run native/tests/gen_golden.py)\n", path);
        g_fail++;
        *n = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)bytes);
    *n = buf && fread(buf, 1, (size_t)bytes, f) == (size_t)bytes ? (size_t)bytes / elem : 0;
    fclose(f);
    return buf;
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        m = d > m ? d : m;
    }
    return m;
}

static void test_fft(void)
{
    const int sizes[] = {256, 200, 512, 400, 360, 77};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        const int n = sizes[s];
        char in_name[64], out_name[64];
        snprintf(in_name, sizeof(in_name), "fft%d_in.f32", n);
        snprintf(out_name, sizeof(out_name), "fft%d_out.f32", n);
        size_t ni, no;
        float *in = load(in_name, sizeof(float), &ni), *ref = load(out_name, sizeof(float), &no);
        if (in && ref && ni == (size_t)2 * n && no == ni) {
            ea_fft_plan p;
            CHECK(ea_fft_init(&p, n) == 0, "fft plan %d", n);
            float *re = malloc((size_t)n * sizeof(float)), *im = malloc((size_t)n * sizeof(float));
            for (int i = 0; i < n; i++) {
                re[i] = in[2 * i];
                im[i] = in[2 * i + 1];
            }
            ea_fft_forward(&p, re, im);
            for (int i = 0; i < n; i++) {
                in[2 * i] = re[i];
                in[2 * i + 1] = im[i];
            }
            free(re);
            free(im);
            float peak = 0.0f;
            for (size_t i = 0; i < no; i++)
                peak = fabsf(ref[i]) > peak ? fabsf(ref[i]) : peak;
            float err = max_abs_diff(in, ref, no) / peak;
            CHECK(err < 2e-6f, "fft %d relative error %g", n, err);
            ea_fft_free(&p);
        }
        free(in);
        free(ref);
    }
    /* Real FFT forward/inverse round trip and against a direct DFT. */
    enum { N = 400 };
    float x[N], y[N];
    ea_cpx spec[N / 2 + 1];
    for (int i = 0; i < N; i++)
        x[i] = (float)sin(0.37 * i) + 0.25f * (float)((i * 7919) % 13) - 1.5f;
    ea_rfft_plan rp;
    CHECK(ea_rfft_init(&rp, N, 1) == 0, "rfft plan");
    ea_rfft_forward(&rp, x, spec);
    double worst = 0.0;
    for (int k = 0; k <= N / 2; k++) {
        double re = 0.0, im = 0.0;
        for (int i = 0; i < N; i++) {
            re += x[i] * cos(2 * M_PI * k * i / N);
            im -= x[i] * sin(2 * M_PI * k * i / N);
        }
        worst = fmax(worst, fabs(re - spec[k].re) + fabs(im - spec[k].im));
    }
    CHECK(worst < 1e-3, "rfft vs direct DFT error %g", worst);
    ea_rfft_inverse(&rp, spec, y);
    CHECK(max_abs_diff(x, y, N) < 1e-5f, "rfft round trip error %g", max_abs_diff(x, y, N));
    ea_rfft_free(&rp);
}

static void test_oww(void)
{
    size_t n, nr;
    int16_t *pcm = load("oww_in.i16", sizeof(int16_t), &n);
    float *ref = load("oww_out.f32", sizeof(float), &nr);
    if (!pcm || !ref) {
        free(pcm);
        free(ref);
        return;
    }
    const size_t frames = nr / EA_OWW_BANDS;
    float *out = calloc(frames + 16, EA_OWW_BANDS * sizeof(float));
    float *out2 = calloc(frames + 16, EA_OWW_BANDS * sizeof(float));
    ea_oww_mel *h = NULL;
    CHECK(ea_oww_mel_create(EA_OWW_CLAMP_NONE, &h) == EA_OK, "oww create");
    size_t got = 0;
    CHECK(ea_oww_mel_process(h, pcm, n, out, frames + 16, &got) == EA_OK, "oww process");
    CHECK(got == frames, "oww frames %zu, expected %zu", got, frames);
    float err = max_abs_diff(out, ref, frames * EA_OWW_BANDS);
    CHECK(err < 1e-3f, "oww vs melspectrogram.onnx max abs diff %g", err);
    ea_oww_mel_destroy(h);

    /* Block clamp mode fed in awkward chunk sizes: same frames (no silence here, clamp inactive). */
    CHECK(ea_oww_mel_create(EA_OWW_CLAMP_BLOCKS, &h) == EA_OK, "oww create blocks");
    const size_t chunks[] = {1, 7, 160, 1280, 333, 2};
    size_t pos = 0, total = 0, c = 0;
    while (pos < n) {
        size_t take = chunks[c++ % 6];
        take = take > n - pos ? n - pos : take;
        size_t want = 0, nf = 0;
        ea_oww_mel_frames_for(h, take, &want);
        CHECK(ea_oww_mel_process(h, pcm + pos, take, out2 + total * EA_OWW_BANDS, frames + 16 - total, &nf) == EA_OK,
              "oww chunk");
        CHECK(nf == want, "frames_for %zu != written %zu", want, nf);
        total += nf;
        pos += take;
    }
    /* Blocks release 5, then 8 at a time. */
    size_t expect_blocks = frames < 5 ? 0 : 5 + (frames - 5) / 8 * 8;
    CHECK(total == expect_blocks, "block mode released %zu frames, expected %zu", total, expect_blocks);
    CHECK(max_abs_diff(out, out2, total * EA_OWW_BANDS) == 0.0f, "oww chunked output differs");
    CHECK(ea_oww_mel_frames_released(h) == (int64_t)total, "frames_released");

    /* Too-small output buffer: EA_ESPACE and nothing consumed. */
    ea_oww_mel_reset(h);
    size_t nf = 0;
    CHECK(ea_oww_mel_process(h, pcm, 4000, out, 1, &nf) == EA_ESPACE, "ESPACE expected");
    CHECK(ea_oww_mel_process(h, pcm, 4000, out2, frames + 16, &nf) == EA_OK && nf == 21,
          "after ESPACE the stream starts from sample 0 (%zu frames)", nf);
    CHECK(max_abs_diff(out, out2, 0) == 0.0f && ea_oww_mel_create(7, &h) == EA_EINVAL, "bad clamp mode");
    ea_oww_mel_destroy(NULL);
    free(out);
    free(out2);
    free(pcm);
    free(ref);
    ea_oww_mel_destroy(h);
}

static void test_oww_block_clamp(void)
{
    /* Loud tone then digital silence: block mode clamps silence to block max - 8 (transformed units). */
    enum { N = 4000 };
    int16_t pcm[N];
    for (int i = 0; i < N; i++)
        pcm[i] = i < 1500 ? (int16_t)(20000.0 * sin(2 * M_PI * 1000.0 * i / 16000.0)) : 0;
    float out[32 * EA_OWW_BANDS];
    ea_oww_mel *h;
    size_t nf;
    ea_oww_mel_create(EA_OWW_CLAMP_BLOCKS, &h);
    ea_oww_mel_process(h, pcm, N, out, 32, &nf);
    CHECK(nf == 21, "clamp test frames %zu", nf);
    for (int b = 0; b < 3; b++) { /* blocks 0..4, 5..12, 13..20 */
        int lo = b == 0 ? 0 : 8 * b - 3, hi = 8 * b + 4;
        float mx = -1e9f, mn = 1e9f;
        for (int i = lo * EA_OWW_BANDS; i < (hi + 1) * EA_OWW_BANDS; i++) {
            mx = out[i] > mx ? out[i] : mx;
            mn = out[i] < mn ? out[i] : mn;
        }
        CHECK(mn >= mx - 8.0f - 1e-5f, "block %d spans %g .. %g (> 8)", b, mn, mx);
    }
    CHECK(fabsf(out[20 * EA_OWW_BANDS] - (-8.0f)) < 1e-6f, "all-silent block stays at the 1e-10 floor (%g)",
          out[20 * EA_OWW_BANDS]);
    ea_oww_mel_destroy(h);
}

static void test_whisper(void)
{
    size_t n, nr;
    float *x = load("whisper_in.f32", sizeof(float), &n), *ref = load("whisper_out.f32", sizeof(float), &nr);
    if (x && ref) {
        ea_whisper_mel *h;
        CHECK(ea_whisper_mel_create(&h) == EA_OK, "whisper create");
        size_t nf = ea_whisper_mel_frames(n, 160), got = 0;
        CHECK(nf * EA_WHISPER_BANDS == nr, "whisper frame count %zu vs golden %zu", nf, nr / EA_WHISPER_BANDS);
        float *out = malloc(nr * sizeof(float));
        CHECK(ea_whisper_mel_compute(h, x, n, 160, out, nf, &got) == EA_OK && got == nf, "whisper compute");
        float err = max_abs_diff(out, ref, nr);
        CHECK(err < 1e-4f, "whisper vs faster-whisper max abs diff %g", err);
        CHECK(ea_whisper_mel_compute(h, x, n, 160, out, nf - 1, &got) == EA_ESPACE, "whisper ESPACE");
        x[10] = NAN;
        CHECK(ea_whisper_mel_compute(h, x, n, 160, out, nf, &got) == EA_ENONFINITE, "whisper NaN");
        free(out);
        ea_whisper_mel_destroy(h);
    }
    free(x);
    free(ref);
}

/* Amplitude of a sine at f_hz in y (least squares against sin/cos). */
static double tone_amp(const float *y, size_t n, double f_hz, double fs)
{
    double s = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        s += y[i] * sin(2 * M_PI * f_hz * (double)i / fs);
        c += y[i] * cos(2 * M_PI * f_hz * (double)i / fs);
    }
    return 2.0 * sqrt(s * s + c * c) / (double)n;
}

static void test_resampler(void)
{
    const int rates[] = {8000, 22050, 44100, 48000};
    for (int r = 0; r < 4; r++) {
        const int fs = rates[r];
        const size_t n_in = (size_t)fs; /* 1 s */
        float *x = malloc(n_in * sizeof(float)), *y = malloc(20000 * sizeof(float)),
              *y2 = malloc(20000 * sizeof(float));
        ea_resampler *h;
        CHECK(ea_resampler_create(fs, 16000, &h) == EA_OK, "resampler create %d", fs);
        /* Pass band: 1 kHz keeps its amplitude. */
        for (size_t i = 0; i < n_in; i++)
            x[i] = (float)(0.5 * sin(2 * M_PI * 1000.0 * (double)i / fs));
        size_t want = ea_resampler_output_for(h, n_in), got = 0;
        CHECK(ea_resampler_process(h, x, n_in, y, 20000, &got) == EA_OK && got == want, "resample %d", fs);
        CHECK(got >= 15999 && got <= 16001, "resample %d: %zu outputs for 1 s", fs, got);
        const int d = ea_resampler_delay(h);
        double a = tone_amp(y + 2 * d, 16000 - 4 * (size_t)d, 1000.0, 16000.0);
        CHECK(fabs(20 * log10(a / 0.5)) < 0.01, "resample %d: 1 kHz gain %g dB", fs, 20 * log10(a / 0.5));
        /* Chunked = one shot. */
        ea_resampler_reset(h);
        size_t pos = 0, tot = 0, k = 0;
        const size_t pieces[] = {1, 7, 160, 1280, 441, 3};
        while (pos < n_in) {
            size_t take = pieces[k++ % 6];
            take = take > n_in - pos ? n_in - pos : take;
            size_t g2 = 0;
            ea_resampler_process(h, x + pos, take, y2 + tot, 20000 - tot, &g2);
            tot += g2;
            pos += take;
        }
        CHECK(tot == got && max_abs_diff(y, y2, got) == 0.0f, "resample %d chunked differs", fs);
        size_t nfl = 0;
        CHECK(ea_resampler_flush(h, y2, 20000, &nfl) == EA_OK && nfl == (size_t)d, "flush %d", fs);
        /* Stop band: a tone that would alias (above the 8 kHz / 4 kHz edge) is rejected >= 85 dB. */
        if (fs > 16000) {
            for (size_t i = 0; i < n_in; i++)
                x[i] = (float)(0.5 * sin(2 * M_PI * 9000.0 * (double)i / fs));
            ea_resampler_process(h, x, n_in, y, 20000, &got);
            double peak = 0;
            for (size_t i = 2 * (size_t)d; i < got - 2 * (size_t)d; i++)
                peak = fmax(peak, fabs(y[i]));
            CHECK(20 * log10(peak / 0.5 + 1e-30) < -85.0, "resample %d: 9 kHz leaks at %g dB", fs,
                  20 * log10(peak / 0.5 + 1e-30));
        }
        free(x);
        free(y);
        free(y2);
        ea_resampler_destroy(h);
    }
    ea_resampler *h = NULL;
    CHECK(ea_resampler_create(12345, 16000, &h) == EA_ERATE && h == NULL, "12345 Hz must be EA_ERATE");
    CHECK(ea_resampler_create(100, 16000, &h) == EA_ERATE, "100 Hz must be EA_ERATE");
}

static void test_highpass(void)
{
    ea_highpass *h;
    CHECK(ea_highpass_create(60.0, 16000, &h) == EA_OK, "highpass create");
    enum { N = 32000 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = 0.3f + 0.2f * (float)sin(2 * M_PI * 1000.0 * i / 16000.0);
    CHECK(ea_highpass_process_f32(h, x, y, N) == EA_OK, "highpass process");
    double dc = 0;
    for (int i = N / 2; i < N; i++)
        dc += y[i];
    dc /= N / 2;
    CHECK(fabs(dc) < 1e-4, "DC left %g", dc);
    double a = tone_amp(y + N / 2, N / 2, 1000.0, 16000.0);
    CHECK(fabs(a - 0.2) < 0.002, "1 kHz amplitude %g", a);
    ea_highpass_destroy(h);
    CHECK(ea_highpass_create(9000.0, 16000, &h) == EA_EINVAL && h == NULL, "cutoff above Nyquist");
    ea_highpass_destroy(NULL);
}

static void test_ns(void)
{
    /* With 0 dB maximum attenuation the gain is 1: output = input delayed by EA_NS_DELAY exactly. */
    ea_ns_params p;
    ea_ns_default_params(&p);
    p.max_attenuation_db = 0.0f;
    ea_ns *h;
    CHECK(ea_ns_create(&p, &h) == EA_OK, "ns create");
    enum { N = 8000 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(0.3 * sin(0.05 * i) + 0.1 * sin(1.3 * i));
    size_t pos = 0, k = 0;
    const size_t pieces[] = {1, 7, 160, 1280, 255, 3};
    while (pos < N) {
        size_t take = pieces[k++ % 6];
        take = take > N - pos ? N - pos : take;
        CHECK(ea_ns_process_f32(h, x + pos, y + pos, take) == EA_OK, "ns process");
        pos += take;
    }
    float err = max_abs_diff(x, y + EA_NS_DELAY, N - EA_NS_DELAY);
    CHECK(err < 1e-5f, "ns unity-gain reconstruction error %g", err);
    for (int i = 0; i < EA_NS_DELAY; i++)
        CHECK(fabsf(y[i]) < 1e-6f, "ns delay samples must be silent (%g)", y[i]);
    x[5] = INFINITY;
    CHECK(ea_ns_process_f32(h, x, y, N) == EA_ENONFINITE, "ns Inf");
    p.dd_alpha = 1.5f;
    ea_ns *bad = NULL;
    CHECK(ea_ns_create(&p, &bad) == EA_EINVAL && bad == NULL, "ns bad params");
    ea_ns_destroy(h);
}

int main(int argc, char **argv)
{
    g_dir = argc > 1 ? argv[1] : "tests/golden";
    CHECK(ea_abi_version() == EA_ABI_VERSION, "abi");
    CHECK(strcmp(ea_strerror(EA_ERATE), "sample rate not supported") == 0, "strerror");
    test_fft();
    test_oww();
    test_oww_block_clamp();
    test_whisper();
    test_resampler();
    test_highpass();
    test_ns();
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
