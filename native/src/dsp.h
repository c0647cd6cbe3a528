/* Internal DSP building blocks shared by the front-end modules (not part of the public contract). */
#ifndef EA_DSP_H
#define EA_DSP_H

#include <stddef.h>

#define EA_FFT_MAX_STAGES 24

typedef struct {
    float re, im;
} ea_cpx;

/* Mixed-radix complex FFT plan (Stockham autosort, decimation in frequency; radices 4, 2, 3, 5 and
 * any other prime up to 64). Split format (separate real and imaginary arrays) so that gcc
 * vectorises the butterflies over the interleaved sub-transforms. Forward transform, no scaling. */
typedef struct {
    int n;
    int n_stages;
    int radix[EA_FFT_MAX_STAGES];
    float *tw_re[EA_FFT_MAX_STAGES]; /* per stage: (radix-1) * (ncur/radix) twiddles, [(k-1) * m + j], m = ncur/radix */
    float *tw_im[EA_FFT_MAX_STAGES];
    float *tw_mem;
    float *work; /* 2 n scratch values */
} ea_fft_plan;

int ea_fft_init(ea_fft_plan *p, int n);
void ea_fft_free(ea_fft_plan *p);
/* In-place forward complex FFT of (re, im), n values each. */
void ea_fft_forward(const ea_fft_plan *p, float *re, float *im);

/* Real FFT of even length n through a complex FFT of n/2. */
typedef struct {
    int n;
    ea_fft_plan half;
    float *post_re, *post_im; /* n/2 + 1 twiddles exp(-2 pi i k / n) */
    float *zr, *zi;           /* (n/2 + 1) * max_batch values each */
    float *wr, *wi;           /* FFT scratch, same size */
    int max_batch;
} ea_rfft_plan;

/* batch: how many interleaved transforms the scratch buffers hold (1 for the functions below). */
int ea_rfft_init(ea_rfft_plan *p, int n, int max_batch);
void ea_rfft_free(ea_rfft_plan *p);
/* Spectrum X[0..n/2] of the real sequence x[0..n-1] (writes n/2 + 1 values to spec). */
void ea_rfft_forward(ea_rfft_plan *p, const float *x, ea_cpx *spec);
/* Power |X[k]|^2 for k = 0 .. n_bins - 1 (n_bins <= n/2 + 1; bins above a mel bank's top are skipped). */
void ea_rfft_power(ea_rfft_plan *p, const float *x, float *power, int n_bins);
/* Inverse of ea_rfft_forward including the 1/n scaling (spec is not modified). */
void ea_rfft_inverse(ea_rfft_plan *p, const ea_cpx *spec, float *x);

/* Sparse mel filterbank: band b has weights w[offset[b] .. offset[b] + count[b]) applied to power
 * bins first[b] .. first[b] + count[b] - 1. */
typedef struct {
    int n_bands;
    int *first;
    int *count;
    int *offset;
    float *w;
} ea_melbank;

/* Slaney mel scale and Slaney area normalisation (2 / (f_hi - f_lo)) over power bins 0..n_fft/2. */
int ea_melbank_init(ea_melbank *m, int sample_rate_hz, int n_fft, int n_bands, double f_min_hz,
                    double f_max_hz);
void ea_melbank_free(ea_melbank *m);
void ea_melbank_apply(const ea_melbank *m, const float *power, float *bands);
/* Bins a filterbank reads: 1 + its highest power bin. */
int ea_melbank_bins(const ea_melbank *m);

/* out[i] = log10(max(in[i], floor_v)) for floor_v > 0 (absolute error < 1e-6; vectorisable). */
void ea_log10_floor(const float *in, float *out, int n, float floor_v);

/* 1 if every value is finite. */
int ea_all_finite(const float *x, size_t n);
/* Round to nearest and saturate to int16. */
short ea_sat16(double v);

#endif
