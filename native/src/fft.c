/* Mixed-radix FFT (Stockham autosort, decimation in frequency, split re/im) and real-FFT wrappers.
 *
 * Stage with radix r on sub-transforms of length ncur = r * m, s of them interleaved:
 *   y[q + s (r j + k)] = w^(j k) * sum_t x[q + s (j + t m)] * exp(-2 pi i t k / r),  w = exp(-2 pi i / ncur)
 * then ncur <- m, s <- s r. After the last stage the output is in natural order. The inner loop runs
 * over q (contiguous in input and output), which is what gcc vectorises. */
#include "dsp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EA_TWO_PI 6.283185307179586476925286766559

#if defined(__GNUC__)
#define EA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define EA_ALWAYS_INLINE inline
#endif
#define MAX_GENERIC_RADIX 64

static int factorize(int n, int *radix)
{
    int k = 0;
    while (n % 4 == 0 && k < EA_FFT_MAX_STAGES) {
        radix[k++] = 4;
        n /= 4;
    }
    while (n % 2 == 0 && k < EA_FFT_MAX_STAGES) {
        radix[k++] = 2;
        n /= 2;
    }
    for (int p = 3; n > 1 && k < EA_FFT_MAX_STAGES; p += 2) {
        while (n % p == 0 && k < EA_FFT_MAX_STAGES) {
            radix[k++] = p;
            n /= p;
        }
    }
    return n == 1 ? k : -1;
}

int ea_fft_init(ea_fft_plan *p, int n)
{
    memset(p, 0, sizeof(*p));
    if (n < 1)
        return -1;
    p->n = n;
    p->n_stages = factorize(n, p->radix);
    if (p->n_stages < 0)
        return -1;
    for (int s = 0; s < p->n_stages; s++)
        if (p->radix[s] > MAX_GENERIC_RADIX)
            return -1; /* the generic butterfly keeps its temporaries on the stack */
    size_t total = 0;
    int ncur = n;
    for (int s = 0; s < p->n_stages; s++) {
        int r = p->radix[s];
        total += (size_t)(r - 1) * (size_t)(ncur / r);
        ncur /= r;
    }
    p->tw_mem = malloc((2 * total + 1) * sizeof(float));
    p->work = malloc(2 * (size_t)n * sizeof(float));
    if (!p->tw_mem || !p->work) {
        ea_fft_free(p);
        return -2;
    }
    float *t = p->tw_mem;
    ncur = n;
    for (int s = 0; s < p->n_stages; s++) {
        const int r = p->radix[s], m = ncur / r;
        const size_t cnt = (size_t)(r - 1) * (size_t)m;
        p->tw_re[s] = t;
        p->tw_im[s] = t + cnt;
        for (int j = 0; j < m; j++)
            for (int k = 1; k < r; k++) {
                const double a = -EA_TWO_PI * (double)j * (double)k / (double)ncur;
                p->tw_re[s][(size_t)(k - 1) * m + j] = (float)cos(a);
                p->tw_im[s][(size_t)(k - 1) * m + j] = (float)sin(a);
            }
        t += 2 * cnt;
        ncur = m;
    }
    return 0;
}

void ea_fft_free(ea_fft_plan *p)
{
    free(p->tw_mem);
    free(p->work);
    p->tw_mem = NULL;
    p->work = NULL;
}

static void stage_r2(int m, int s, const float *twr, const float *twi, const float *restrict xr,
                     const float *restrict xi, float *restrict yr, float *restrict yi)
{
    for (int j = 0; j < m; j++) {
        const float wr = twr[j], wi = twi[j];
        const size_t i0 = (size_t)s * j, i1 = (size_t)s * (j + m), o0 = (size_t)s * 2 * j, o1 = o0 + s;
        for (int q = 0; q < s; q++) {
            const float ar = xr[i0 + q], ai = xi[i0 + q], br = xr[i1 + q], bi = xi[i1 + q];
            const float dr = ar - br, di = ai - bi;
            yr[o0 + q] = ar + br;
            yi[o0 + q] = ai + bi;
            yr[o1 + q] = dr * wr - di * wi;
            yi[o1 + q] = dr * wi + di * wr;
        }
    }
}

static EA_ALWAYS_INLINE void stage_r4(int m, int s, const float *twr, const float *twi, const float *restrict xr,
                     const float *restrict xi, float *restrict yr, float *restrict yi)
{
    for (int j = 0; j < m; j++) {
        const float w1r = twr[j], w1i = twi[j], w2r = twr[m + j], w2i = twi[m + j];
        const float w3r = twr[2 * m + j], w3i = twi[2 * m + j];
        const size_t i0 = (size_t)s * j, i1 = (size_t)s * (j + m), i2 = (size_t)s * (j + 2 * m),
                     i3 = (size_t)s * (j + 3 * m);
        const size_t o0 = (size_t)s * 4 * j, o1 = o0 + s, o2 = o1 + s, o3 = o2 + s;
        for (int q = 0; q < s; q++) {
            const float a0r = xr[i0 + q], a0i = xi[i0 + q], a1r = xr[i1 + q], a1i = xi[i1 + q];
            const float a2r = xr[i2 + q], a2i = xi[i2 + q], a3r = xr[i3 + q], a3i = xi[i3 + q];
            const float s02r = a0r + a2r, s02i = a0i + a2i, d02r = a0r - a2r, d02i = a0i - a2i;
            const float s13r = a1r + a3r, s13i = a1i + a3i, d13r = a1r - a3r, d13i = a1i - a3i;
            /* b1 = d02 - i d13, b3 = d02 + i d13 */
            const float b1r = d02r + d13i, b1i = d02i - d13r, b2r = s02r - s13r, b2i = s02i - s13i;
            const float b3r = d02r - d13i, b3i = d02i + d13r;
            yr[o0 + q] = s02r + s13r;
            yi[o0 + q] = s02i + s13i;
            yr[o1 + q] = b1r * w1r - b1i * w1i;
            yi[o1 + q] = b1r * w1i + b1i * w1r;
            yr[o2 + q] = b2r * w2r - b2i * w2i;
            yi[o2 + q] = b2r * w2i + b2i * w2r;
            yr[o3 + q] = b3r * w3r - b3i * w3i;
            yi[o3 + q] = b3r * w3i + b3i * w3r;
        }
    }
}

static void stage_r4_s4(int m, const float *twr, const float *twi, const float *restrict xr,
                        const float *restrict xi, float *restrict yr, float *restrict yi)
{
    stage_r4(m, 4, twr, twi, xr, xi, yr, yi);
}

static void stage_r4_s16(int m, const float *twr, const float *twi, const float *restrict xr,
                         const float *restrict xi, float *restrict yr, float *restrict yi)
{
    stage_r4(m, 16, twr, twi, xr, xi, yr, yi);
}

static void stage_r4_any(int m, int s, const float *twr, const float *twi, const float *restrict xr,
                         const float *restrict xi, float *restrict yr, float *restrict yi)
{
    stage_r4(m, s, twr, twi, xr, xi, yr, yi);
}

/* First radix-4 stage (s == 1): loop over j, contiguous loads, 4-way interleaved stores. */
static void stage_r4_first(int m, const float *restrict twr, const float *restrict twi, const float *restrict xr,
                           const float *restrict xi, float *restrict yr, float *restrict yi)
{
    for (int j = 0; j < m; j++) {
        const float a0r = xr[j], a0i = xi[j], a1r = xr[j + m], a1i = xi[j + m];
        const float a2r = xr[j + 2 * m], a2i = xi[j + 2 * m], a3r = xr[j + 3 * m], a3i = xi[j + 3 * m];
        const float s02r = a0r + a2r, s02i = a0i + a2i, d02r = a0r - a2r, d02i = a0i - a2i;
        const float s13r = a1r + a3r, s13i = a1i + a3i, d13r = a1r - a3r, d13i = a1i - a3i;
        const float b1r = d02r + d13i, b1i = d02i - d13r, b2r = s02r - s13r, b2i = s02i - s13i;
        const float b3r = d02r - d13i, b3i = d02i + d13r;
        const float w1r = twr[j], w1i = twi[j], w2r = twr[m + j], w2i = twi[m + j];
        const float w3r = twr[2 * m + j], w3i = twi[2 * m + j];
        yr[4 * j] = s02r + s13r;
        yi[4 * j] = s02i + s13i;
        yr[4 * j + 1] = b1r * w1r - b1i * w1i;
        yi[4 * j + 1] = b1r * w1i + b1i * w1r;
        yr[4 * j + 2] = b2r * w2r - b2i * w2i;
        yi[4 * j + 2] = b2r * w2i + b2i * w2r;
        yr[4 * j + 3] = b3r * w3r - b3i * w3i;
        yi[4 * j + 3] = b3r * w3i + b3i * w3r;
    }
}

/* Last radix-4 stage (m == 1): all twiddles are 1. */
static void stage_r4_last(int s, const float *restrict xr, const float *restrict xi, float *restrict yr,
                          float *restrict yi)
{
    for (int q = 0; q < s; q++) {
        const float a0r = xr[q], a0i = xi[q], a1r = xr[s + q], a1i = xi[s + q];
        const float a2r = xr[2 * s + q], a2i = xi[2 * s + q], a3r = xr[3 * s + q], a3i = xi[3 * s + q];
        const float s02r = a0r + a2r, s02i = a0i + a2i, d02r = a0r - a2r, d02i = a0i - a2i;
        const float s13r = a1r + a3r, s13i = a1i + a3i, d13r = a1r - a3r, d13i = a1i - a3i;
        yr[q] = s02r + s13r;
        yi[q] = s02i + s13i;
        yr[s + q] = d02r + d13i;
        yi[s + q] = d02i - d13r;
        yr[2 * s + q] = s02r - s13r;
        yi[2 * s + q] = s02i - s13i;
        yr[3 * s + q] = d02r - d13i;
        yi[3 * s + q] = d02i + d13r;
    }
}

static void stage_r3(int m, int s, const float *twr, const float *twi, const float *restrict xr,
                     const float *restrict xi, float *restrict yr, float *restrict yi)
{
    const float c = -0.5f, sn = -0.86602540378443864676f; /* exp(-2 pi i / 3) = c + i sn */
    for (int j = 0; j < m; j++) {
        const float w1r = twr[j], w1i = twi[j], w2r = twr[m + j], w2i = twi[m + j];
        const size_t i0 = (size_t)s * j, i1 = (size_t)s * (j + m), i2 = (size_t)s * (j + 2 * m);
        const size_t o0 = (size_t)s * 3 * j, o1 = o0 + s, o2 = o1 + s;
        for (int q = 0; q < s; q++) {
            const float a0r = xr[i0 + q], a0i = xi[i0 + q], a1r = xr[i1 + q], a1i = xi[i1 + q];
            const float a2r = xr[i2 + q], a2i = xi[i2 + q];
            const float sr = a1r + a2r, si = a1i + a2i, dr = a1r - a2r, di = a1i - a2i;
            const float mr = a0r + c * sr, mi = a0i + c * si;
            const float b1r = mr - sn * di, b1i = mi + sn * dr, b2r = mr + sn * di, b2i = mi - sn * dr;
            yr[o0 + q] = a0r + sr;
            yi[o0 + q] = a0i + si;
            yr[o1 + q] = b1r * w1r - b1i * w1i;
            yi[o1 + q] = b1r * w1i + b1i * w1r;
            yr[o2 + q] = b2r * w2r - b2i * w2i;
            yi[o2 + q] = b2r * w2i + b2i * w2r;
        }
    }
}

static void stage_r5(int m, int s, const float *twr, const float *twi, const float *restrict xr,
                     const float *restrict xi, float *restrict yr, float *restrict yi)
{
    /* exp(-2 pi i k / 5) = c_k + i s_k */
    const float c1 = 0.30901699437494742410f, c2 = -0.80901699437494742410f;
    const float s1 = -0.95105651629515357212f, s2 = -0.58778525229247312917f;
    for (int j = 0; j < m; j++) {
        const float *wr = twr + j, *wi = twi + j; /* twiddle k at [(k - 1) * m] */
        const size_t i0 = (size_t)s * j, i1 = (size_t)s * (j + m), i2 = (size_t)s * (j + 2 * m),
                     i3 = (size_t)s * (j + 3 * m), i4 = (size_t)s * (j + 4 * m);
        const size_t o0 = (size_t)s * 5 * j, o1 = o0 + s, o2 = o1 + s, o3 = o2 + s, o4 = o3 + s;
        for (int q = 0; q < s; q++) {
            const float a0r = xr[i0 + q], a0i = xi[i0 + q];
            const float p1r = xr[i1 + q] + xr[i4 + q], p1i = xi[i1 + q] + xi[i4 + q];
            const float m1r = xr[i1 + q] - xr[i4 + q], m1i = xi[i1 + q] - xi[i4 + q];
            const float p2r = xr[i2 + q] + xr[i3 + q], p2i = xi[i2 + q] + xi[i3 + q];
            const float m2r = xr[i2 + q] - xr[i3 + q], m2i = xi[i2 + q] - xi[i3 + q];
            const float t1r = a0r + c1 * p1r + c2 * p2r, t1i = a0i + c1 * p1i + c2 * p2i;
            const float t2r = a0r + c2 * p1r + c1 * p2r, t2i = a0i + c2 * p1i + c1 * p2i;
            /* i * (s1 m1 + s2 m2) and i * (s2 m1 - s1 m2) */
            const float u1r = -(s1 * m1i + s2 * m2i), u1i = s1 * m1r + s2 * m2r;
            const float u2r = -(s2 * m1i - s1 * m2i), u2i = s2 * m1r - s1 * m2r;
            const float b1r = t1r + u1r, b1i = t1i + u1i, b4r = t1r - u1r, b4i = t1i - u1i;
            const float b2r = t2r + u2r, b2i = t2i + u2i, b3r = t2r - u2r, b3i = t2i - u2i;
            yr[o0 + q] = a0r + p1r + p2r;
            yi[o0 + q] = a0i + p1i + p2i;
            yr[o1 + q] = b1r * wr[0 * (size_t)m] - b1i * wi[0 * (size_t)m];
            yi[o1 + q] = b1r * wi[0 * (size_t)m] + b1i * wr[0 * (size_t)m];
            yr[o2 + q] = b2r * wr[1 * (size_t)m] - b2i * wi[1 * (size_t)m];
            yi[o2 + q] = b2r * wi[1 * (size_t)m] + b2i * wr[1 * (size_t)m];
            yr[o3 + q] = b3r * wr[2 * (size_t)m] - b3i * wi[2 * (size_t)m];
            yi[o3 + q] = b3r * wi[2 * (size_t)m] + b3i * wr[2 * (size_t)m];
            yr[o4 + q] = b4r * wr[3 * (size_t)m] - b4i * wi[3 * (size_t)m];
            yi[o4 + q] = b4r * wi[3 * (size_t)m] + b4i * wr[3 * (size_t)m];
        }
    }
}

static void stage_generic(int r, int m, int s, const float *twr, const float *twi, const float *restrict xr,
                          const float *restrict xi, float *restrict yr, float *restrict yi)
{
    float rr[MAX_GENERIC_RADIX], ri[MAX_GENERIC_RADIX], ar[MAX_GENERIC_RADIX], ai[MAX_GENERIC_RADIX];
    for (int k = 0; k < r; k++) {
        const double ang = -EA_TWO_PI * (double)k / (double)r;
        rr[k] = (float)cos(ang);
        ri[k] = (float)sin(ang);
    }
    for (int j = 0; j < m; j++) {
        for (int q = 0; q < s; q++) {
            for (int t = 0; t < r; t++) {
                ar[t] = xr[q + (size_t)s * (j + (size_t)t * m)];
                ai[t] = xi[q + (size_t)s * (j + (size_t)t * m)];
            }
            for (int k = 0; k < r; k++) {
                float accr = ar[0], acci = ai[0];
                int idx = 0;
                for (int t = 1; t < r; t++) {
                    idx += k;
                    if (idx >= r)
                        idx -= r;
                    accr += ar[t] * rr[idx] - ai[t] * ri[idx];
                    acci += ar[t] * ri[idx] + ai[t] * rr[idx];
                }
                const size_t o = q + (size_t)s * ((size_t)r * j + k);
                if (k) {
                    const float wr = twr[(size_t)(k - 1) * m + j], wi = twi[(size_t)(k - 1) * m + j];
                    yr[o] = accr * wr - acci * wi;
                    yi[o] = accr * wi + acci * wr;
                } else {
                    yr[o] = accr;
                    yi[o] = acci;
                }
            }
        }
    }
}

/* batch transforms interleaved element-wise: value i of transform b at [i * batch + b]. */
static void fft_core(const ea_fft_plan *p, float *re, float *im, int batch, float *wr, float *wi)
{
    float *sr = re, *si = im, *dr = wr, *di = wi;
    int ncur = p->n, s = batch;
    for (int st = 0; st < p->n_stages; st++) {
        const int r = p->radix[st], m = ncur / r;
        const float *twr = p->tw_re[st], *twi = p->tw_im[st];
        switch (r) {
        case 4:
            if (s == 1)
                stage_r4_first(m, twr, twi, sr, si, dr, di);
            else if (m == 1)
                stage_r4_last(s, sr, si, dr, di);
            else if (s == 4) /* constant strides let gcc drop the loop and alias checks */
                stage_r4_s4(m, twr, twi, sr, si, dr, di);
            else if (s == 16)
                stage_r4_s16(m, twr, twi, sr, si, dr, di);
            else
                stage_r4_any(m, s, twr, twi, sr, si, dr, di);
            break;
        case 2: stage_r2(m, s, twr, twi, sr, si, dr, di); break;
        case 3: stage_r3(m, s, twr, twi, sr, si, dr, di); break;
        case 5: stage_r5(m, s, twr, twi, sr, si, dr, di); break;
        default: stage_generic(r, m, s, twr, twi, sr, si, dr, di); break;
        }
        float *t = sr;
        sr = dr;
        dr = t;
        t = si;
        si = di;
        di = t;
        ncur = m;
        s *= r;
    }
    if (sr != re) {
        memcpy(re, sr, (size_t)p->n * (size_t)batch * sizeof(float));
        memcpy(im, si, (size_t)p->n * (size_t)batch * sizeof(float));
    }
}

void ea_fft_forward(const ea_fft_plan *p, float *re, float *im)
{
    fft_core(p, re, im, 1, p->work, p->work + p->n);
}

int ea_rfft_init(ea_rfft_plan *p, int n, int max_batch)
{
    memset(p, 0, sizeof(*p));
    if (n < 2 || n % 2 || max_batch < 1)
        return -1;
    p->n = n;
    p->max_batch = max_batch;
    int rc = ea_fft_init(&p->half, n / 2);
    if (rc)
        return rc;
    const size_t h1 = (size_t)(n / 2 + 1), hb = h1 * (size_t)max_batch;
    p->post_re = malloc(h1 * sizeof(float));
    p->post_im = malloc(h1 * sizeof(float));
    p->zr = malloc(hb * sizeof(float));
    p->zi = malloc(hb * sizeof(float));
    p->wr = malloc(hb * sizeof(float));
    p->wi = malloc(hb * sizeof(float));
    if (!p->post_re || !p->post_im || !p->zr || !p->zi || !p->wr || !p->wi) {
        ea_rfft_free(p);
        return -2;
    }
    for (size_t k = 0; k < h1; k++) {
        const double a = -EA_TWO_PI * (double)k / (double)n;
        p->post_re[k] = (float)cos(a);
        p->post_im[k] = (float)sin(a);
    }
    return 0;
}

void ea_rfft_free(ea_rfft_plan *p)
{
    ea_fft_free(&p->half);
    free(p->post_re);
    free(p->post_im);
    free(p->zr);
    free(p->zi);
    free(p->wr);
    free(p->wi);
    p->post_re = p->post_im = p->zr = p->zi = p->wr = p->wi = NULL;
}

/* z[k] = x[2k] + i x[2k+1]; Z = FFT(z) (length h = n/2); Z[h] = Z[0] for the mirrored index. */
static void half_transform(ea_rfft_plan *p, const float *x)
{
    const int h = p->n / 2;
    float *restrict zr = p->zr, *restrict zi = p->zi;
    for (int k = 0; k < h; k++) {
        zr[k] = x[2 * k];
        zi[k] = x[2 * k + 1];
    }
    fft_core(&p->half, zr, zi, 1, p->wr, p->wi);
    zr[h] = zr[0];
    zi[h] = zi[0];
}

/* X[k] = E + W^k O, E = (Z[k] + conj Z[h-k]) / 2, O = (Z[k] - conj Z[h-k]) / (2i), k = 0..h. */
void ea_rfft_forward(ea_rfft_plan *p, const float *x, ea_cpx *spec)
{
    const int h = p->n / 2;
    half_transform(p, x);
    const float *zr = p->zr, *zi = p->zi, *wr = p->post_re, *wi = p->post_im;
    for (int k = 0; k <= h; k++) {
        const float ar = zr[k], ai = zi[k], br = zr[h - k], bi = zi[h - k];
        const float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi);
        const float or_ = 0.5f * (ai + bi), oi = -0.5f * (ar - br);
        spec[k].re = er + wr[k] * or_ - wi[k] * oi;
        spec[k].im = ei + wr[k] * oi + wi[k] * or_;
    }
}

void ea_rfft_power(ea_rfft_plan *p, const float *x, float *power, int n_bins)
{
    const int h = p->n / 2;
    half_transform(p, x);
    if (n_bins > h + 1)
        n_bins = h + 1;
    const float *restrict zr = p->zr, *restrict zi = p->zi, *restrict wr = p->post_re, *restrict wi = p->post_im;
    for (int k = 0; k < n_bins; k++) {
        const float ar = zr[k], ai = zi[k], br = zr[h - k], bi = zi[h - k];
        const float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi);
        const float or_ = 0.5f * (ai + bi), oi = -0.5f * (ar - br);
        const float xr = er + wr[k] * or_ - wi[k] * oi;
        const float xi = ei + wr[k] * oi + wi[k] * or_;
        power[k] = xr * xr + xi * xi;
    }
}

/* E = (X[k] + conj X[h-k]) / 2, O = (X[k] - conj X[h-k]) W^-k / 2, Z = E + i O, z = IFFT(Z)
 * computed as conj(FFT(conj Z)) / h. */
void ea_rfft_inverse(ea_rfft_plan *p, const ea_cpx *spec, float *x)
{
    const int h = p->n / 2;
    float *zr = p->zr, *zi = p->zi;
    const float *wr = p->post_re, *wi = p->post_im;
    for (int k = 0; k < h; k++) {
        const ea_cpx a = spec[k], b = spec[h - k];
        const float er = 0.5f * (a.re + b.re), ei = 0.5f * (a.im - b.im);
        const float dr = 0.5f * (a.re - b.re), di = 0.5f * (a.im + b.im);
        const float or_ = dr * wr[k] + di * wi[k], oi = di * wr[k] - dr * wi[k];
        zr[k] = er - oi;
        zi[k] = -(ei + or_);
    }
    fft_core(&p->half, zr, zi, 1, p->wr, p->wi);
    const float scale = 1.0f / (float)h;
    for (int k = 0; k < h; k++) {
        x[2 * k] = zr[k] * scale;
        x[2 * k + 1] = -zi[k] * scale;
    }
}

