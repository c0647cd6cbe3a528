/* Declarations cffi parses (it cannot read the preprocessor). Must match include/ea/frontend.h;
 * the compiler checks that in API mode ("..." takes the value from the real header). */
#define EA_ABI_VERSION ...
#define EA_OK ...
#define EA_EINVAL ...
#define EA_ENOMEM ...
#define EA_ESPACE ...
#define EA_ENONFINITE ...
#define EA_ERATE ...

int ea_abi_version(void);
const char *ea_strerror(int code);

#define EA_OWW_SAMPLE_RATE_HZ ...
#define EA_OWW_HOP ...
#define EA_OWW_FRAME ...
#define EA_OWW_BANDS ...
#define EA_OWW_CLAMP_NONE ...
#define EA_OWW_CLAMP_BLOCKS ...
typedef struct ea_oww_mel ea_oww_mel;
int ea_oww_mel_create(int clamp_mode, ea_oww_mel **out);
void ea_oww_mel_destroy(ea_oww_mel *h);
int ea_oww_mel_reset(ea_oww_mel *h);
int ea_oww_mel_frames_for(const ea_oww_mel *h, size_t n_samples, size_t *n_frames);
int ea_oww_mel_process(ea_oww_mel *h, const int16_t *pcm, size_t n_samples, float *out,
                       size_t out_cap_frames, size_t *n_frames);
int64_t ea_oww_mel_frames_released(const ea_oww_mel *h);

#define EA_WHISPER_N_FFT ...
#define EA_WHISPER_HOP ...
#define EA_WHISPER_BANDS ...
typedef struct ea_whisper_mel ea_whisper_mel;
int ea_whisper_mel_create(ea_whisper_mel **out);
void ea_whisper_mel_destroy(ea_whisper_mel *h);
size_t ea_whisper_mel_frames(size_t n_samples, size_t padding);
int ea_whisper_mel_compute(ea_whisper_mel *h, const float *x, size_t n_samples, size_t padding, float *out,
                           size_t out_cap_frames, size_t *n_frames);

typedef struct ea_resampler ea_resampler;
int ea_resampler_create(int in_rate_hz, int out_rate_hz, ea_resampler **out);
void ea_resampler_destroy(ea_resampler *h);
int ea_resampler_reset(ea_resampler *h);
int ea_resampler_delay(const ea_resampler *h);
size_t ea_resampler_output_for(const ea_resampler *h, size_t n_in);
int ea_resampler_process(ea_resampler *h, const float *in, size_t n_in, float *out, size_t out_cap,
                         size_t *n_out);
int ea_resampler_flush(ea_resampler *h, float *out, size_t out_cap, size_t *n_out);

typedef struct ea_highpass ea_highpass;
int ea_highpass_create(double cutoff_hz, int sample_rate_hz, ea_highpass **out);
void ea_highpass_destroy(ea_highpass *h);
int ea_highpass_reset(ea_highpass *h);
int ea_highpass_process_f32(ea_highpass *h, const float *in, float *out, size_t n);
int ea_highpass_process_i16(ea_highpass *h, const int16_t *in, int16_t *out, size_t n);

#define EA_NS_SAMPLE_RATE_HZ ...
#define EA_NS_FRAME ...
#define EA_NS_HOP ...
#define EA_NS_DELAY ...
typedef struct ea_ns_params {
    float max_attenuation_db;
    float noise_window_s;
    float dd_alpha;
    float overestimate;
} ea_ns_params;
typedef struct ea_ns ea_ns;
void ea_ns_default_params(ea_ns_params *p);
int ea_ns_create(const ea_ns_params *params, ea_ns **out);
void ea_ns_destroy(ea_ns *h);
int ea_ns_reset(ea_ns *h);
int ea_ns_process_f32(ea_ns *h, const float *in, float *out, size_t n);
int ea_ns_process_i16(ea_ns *h, const int16_t *in, int16_t *out, size_t n);
