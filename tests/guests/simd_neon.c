/* Advanced SIMD (NEON) through intrinsics: integer lanes of every size (add/sub/mul,
 * saturating, halving, widening, narrowing, shifts by immediates and by signed registers,
 * rounding shifts), permutes (zip/uzp/trn/ext/rev/tbl), across-lanes reductions, compares and
 * bit selects, popcount/clz, interleaved loads/stores (ld2/ld3/ld4, st2/st3/st4), and float
 * vectors (arithmetic, fma, min/max(nm), conversions, rounding, reciprocal estimates).
 * Each test prints the resulting vector bytes. Built natively it only prints a notice. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __aarch64__
#include <arm_neon.h>

static uint8_t in8[64];
static uint64_t total = 0xcbf29ce484222325ULL;

static void show(const char *name, const void *v, size_t n) {
    const uint8_t *b = v;
    printf("%-13s", name);
    for (size_t i = 0; i < n; i++) {
        printf("%s%02x", i && i % 4 == 0 ? " " : "", b[i]);
        total = (total ^ b[i]) * 0x100000001b3ULL;
    }
    printf("\n");
}
#define SHOW(name, vec) do { __typeof__(vec) v__ = (vec); show(name, &v__, sizeof v__); } while (0)

int main(void) {
    for (int i = 0; i < 64; i++) in8[i] = (uint8_t)(i * 37 + 0x80 + (i & 1 ? 0x40 : 0) - (i == 5) * 0x85);
    uint8x16_t a8 = vld1q_u8(in8), b8 = vld1q_u8(in8 + 16);
    int8x16_t sa8 = vreinterpretq_s8_u8(a8), sb8 = vreinterpretq_s8_u8(b8);
    uint16x8_t a16 = vld1q_u16((const uint16_t *)(in8 + 8)), b16 = vld1q_u16((const uint16_t *)(in8 + 32));
    int16x8_t sa16 = vreinterpretq_s16_u16(a16), sb16 = vreinterpretq_s16_u16(b16);
    uint32x4_t a32 = vld1q_u32((const uint32_t *)(in8 + 4)), b32 = vld1q_u32((const uint32_t *)(in8 + 40));
    int32x4_t sa32 = vreinterpretq_s32_u32(a32), sb32 = vreinterpretq_s32_u32(b32);
    uint64x2_t a64 = vld1q_u64((const uint64_t *)(in8 + 1)), b64 = vld1q_u64((const uint64_t *)(in8 + 47));
    int64x2_t sa64 = vreinterpretq_s64_u64(a64);

    SHOW("add8", vaddq_u8(a8, b8));
    SHOW("sub16", vsubq_u16(a16, b16));
    SHOW("mul32", vmulq_u32(a32, b32));
    SHOW("mla16", vmlaq_u16(a16, b16, a16));
    SHOW("add64", vaddq_u64(a64, b64));
    SHOW("qadd_s8", vqaddq_s8(sa8, sb8));
    SHOW("qadd_u8", vqaddq_u8(a8, b8));
    SHOW("qsub_u16", vqsubq_u16(a16, b16));
    SHOW("qsub_s32", vqsubq_s32(sa32, sb32));
    SHOW("qdmulh_s16", vqdmulhq_s16(sa16, sb16));
    SHOW("qrdmulh_s32", vqrdmulhq_s32(sa32, sb32));
    SHOW("hadd_u8", vhaddq_u8(a8, b8));
    SHOW("rhadd_s8", vrhaddq_s8(sa8, sb8));
    SHOW("abd_s16", vabdq_s16(sa16, sb16));
    SHOW("qabs_s8", vqabsq_s8(sa8));
    SHOW("qneg_s32", vqnegq_s32(vdupq_n_s32(INT32_MIN)));
    SHOW("mull_s8", vmull_s8(vget_low_s8(sa8), vget_high_s8(sb8)));
    SHOW("mull_u32", vmull_u32(vget_low_u32(a32), vget_low_u32(b32)));
    SHOW("addl_u16", vaddl_u16(vget_high_u16(a16), vget_low_u16(b16)));
    SHOW("movn_u16", vmovn_u16(a16));
    SHOW("qmovn_s32", vqmovn_s32(sa32));
    SHOW("qmovun_s16", vqmovun_s16(sa16));
    SHOW("shl8_3", vshlq_n_u8(a8, 3));
    SHOW("sshr16_5", vshrq_n_s16(sa16, 5));
    SHOW("ushr32_31", vshrq_n_u32(a32, 31));
    SHOW("rshr_s8_3", vrshrq_n_s8(sa8, 3));
    SHOW("sra_u16", vsraq_n_u16(a16, b16, 4));
    SHOW("sshl_reg8", vshlq_s8(sa8, vdupq_n_s8(-3)));
    SHOW("ushl_reg64", vshlq_u64(a64, vcombine_s64(vdup_n_s64(5), vdup_n_s64(-7))));
    SHOW("rshl_s16", vrshlq_s16(sa16, vdupq_n_s16(-2)));
    SHOW("qshl_u8", vqshlq_n_u8(a8, 2));
    SHOW("shrn_u32", vshrn_n_u32(a32, 12));
    SHOW("qrshrn_s32", vqrshrn_n_s32(sa32, 9));
    SHOW("sli_u32", vsliq_n_u32(a32, b32, 7));
    SHOW("sri_u8", vsriq_n_u8(a8, b8, 3));
    SHOW("zip1_u8", vzip1q_u8(a8, b8));
    SHOW("uzp2_u16", vuzp2q_u16(a16, b16));
    SHOW("trn1_u32", vtrn1q_u32(a32, b32));
    SHOW("ext_u8_5", vextq_u8(a8, b8, 5));
    SHOW("rev64_u8", vrev64q_u8(a8));
    SHOW("rev32_u16", vrev32q_u16(a16));
    SHOW("tbl1", vqtbl1q_u8(a8, vandq_u8(b8, vdupq_n_u8(0x1f))));
    uint8x16x2_t tab2 = {{a8, b8}};
    SHOW("tbl2", vqtbl2q_u8(tab2, vshrq_n_u8(b8, 2)));
    SHOW("tbx1", vqtbx1q_u8(b8, a8, vshrq_n_u8(a8, 3)));
    SHOW("dup_lane", vdupq_laneq_u16(a16, 5));
    SHOW("ins_lane", vsetq_lane_u32(0xdeadbeef, a32, 2));
    uint32_t red[] = {vaddvq_u8(a8), vaddvq_u16(a16), vaddvq_u32(a32), (uint32_t)vmaxvq_s8(sa8), vminvq_u16(a16),
                      (uint32_t)vaddlvq_s16(sa16), vmaxvq_u32(b32), (uint32_t)vminvq_s32(sb32)};
    show("reductions", red, sizeof red);
    SHOW("addp_u16", vpaddq_u16(a16, b16));
    SHOW("padal_u8", vpadalq_u8(a16, b8));
    SHOW("cgt_s8", vcgtq_s8(sa8, sb8));
    SHOW("cge_u16", vcgeq_u16(a16, b16));
    SHOW("ceqz_u32", vceqzq_u32(vandq_u32(a32, vdupq_n_u32(0x30))));
    SHOW("tst_u8", vtstq_u8(a8, b8));
    SHOW("clt_s64", vcltq_s64(sa64, vdupq_n_s64(0)));
    SHOW("bsl", vbslq_u8(vcgtq_u8(a8, b8), a8, b8));
    SHOW("bic_orn", veorq_u8(vbicq_u8(a8, b8), vornq_u8(b8, a8)));
    SHOW("cnt", vcntq_u8(a8));
    SHOW("clz_u16", vclzq_u16(vshrq_n_u16(a16, 3)));
    SHOW("cls_s32", vclsq_s32(sa32));
    SHOW("rbit", vrbitq_u8(a8));
    SHOW("mvn", vmvnq_u8(a8));
    SHOW("abs_s64", vabsq_s64(sa64));
    SHOW("neg_s16", vnegq_s16(sa16));

    uint8x16x3_t l3 = vld3q_u8(in8);
    SHOW("ld3.0", l3.val[0]);
    SHOW("ld3.2", l3.val[2]);
    uint16x8x2_t l2 = vld2q_u16((const uint16_t *)in8);
    SHOW("ld2.1", l2.val[1]);
    uint32x4x4_t l4 = vld4q_u32((const uint32_t *)in8);
    SHOW("ld4.3", l4.val[3]);
    uint8_t out[64];
    memset(out, 0, sizeof out);
    vst3q_u8(out, l3);
    show("st3 roundtrip", out, 48);
    memset(out, 0, sizeof out);
    vst4q_lane_u32((uint32_t *)out, l4, 1);
    show("st4 lane", out, 16);
    uint8x16_t ld1r = vld1q_dup_u8(in8 + 9);
    SHOW("ld1r", ld1r);

    float fin[8] = {1.5f, -2.25f, 3.0e38f, 1e-40f, 0.0f, -0.0f, 7.75f, 100.5f};
    float32x4_t fa = vld1q_f32(fin), fb = vld1q_f32(fin + 4);
    float nanv = __builtin_nanf("");
    float32x4_t fn = vsetq_lane_f32(nanv, fb, 1);
    SHOW("fadd", vaddq_f32(fa, fb));
    SHOW("fmul", vmulq_f32(fa, fa));
    SHOW("fdiv", vdivq_f32(fb, fa));
    SHOW("fma", vfmaq_f32(fb, fa, fa));
    SHOW("fmin", vminq_f32(fa, fn));
    SHOW("fmaxnm", vmaxnmq_f32(fa, fn));
    SHOW("fabd", vabdq_f32(fa, fb));
    SHOW("fsqrt", vsqrtq_f32(vabsq_f32(fa)));
    SHOW("frecpe", vrecpeq_f32(fa));
    SHOW("frsqrte", vrsqrteq_f32(vabsq_f32(fb)));
    SHOW("frecps", vrecpsq_f32(fa, fb));
    SHOW("cvt_s32", vcvtq_s32_f32(fa));
    SHOW("cvt_u32", vcvtq_u32_f32(fb));
    SHOW("cvtn_s32", vcvtnq_s32_f32(vmulq_n_f32(fb, 0.5f)));
    SHOW("cvt_f32", vcvtq_f32_s32(sa32));
    SHOW("cvt_n_f32", vcvtq_n_f32_u32(a32, 8));
    SHOW("rndn", vrndnq_f32(vmulq_n_f32(fb, 0.1f)));
    SHOW("rndm", vrndmq_f32(vnegq_f32(fb)));
    SHOW("fcge", vcgeq_f32(fa, fn));
    SHOW("faddp", vpaddq_f32(fa, fb));
    float fr[] = {vmaxvq_f32(fb), vminnmvq_f32(fn), vaddvq_f32(fb)};
    show("f reductions", fr, sizeof fr);
    float64x2_t da = vcvt_f64_f32(vget_low_f32(fa)), db = vcvt_high_f64_f32(fb);
    SHOW("cvt_f64", da);
    SHOW("dadd", vaddq_f64(da, db));
    SHOW("dfma", vfmaq_f64(db, da, da));
    SHOW("cvt_f32_f64", vcvt_f32_f64(vmulq_f64(da, vdupq_n_f64(1e300))));
    SHOW("cvt_s64_f64", vcvtq_s64_f64(vmulq_n_f64(da, 1e18)));
    float16x4_t h = vcvt_f16_f32(fa);
    SHOW("f32->f16", h);
    SHOW("f16->f32", vcvt_f32_f16(h));
    printf("total %016llx\n", (unsigned long long)total);
    return 0;
}
#else
int main(void) {
    printf("simd_neon: AArch64 only\n");
    return 0;
}
#endif
