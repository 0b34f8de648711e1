#!/usr/bin/env python3
"""Instruction audit for the Raspberry Pi build: an aarch64 ELF must run on a plain ARMv8.0-A core
(Pi 3 = Cortex-A53, Pi 4 = Cortex-A72 without the crypto extension).

    .ci/audit-aarch64.py BINARY      audit an UNSTRIPPED binary (function names are needed); exit 1 on findings
    .ci/audit-aarch64.py --self-test assemble planted instructions and check that each one is caught

It disassembles with aarch64-linux-gnu-objdump and classifies every instruction:
  * beyond ARMv8.0 (LSE atomics, RDM, dotprod, FP16, SHA3/SHA512, RCpc ldapr, pointer authentication outside
    the HINT space, MTE, BF16/I8MM, MOPS, CSSC, SVE/SME, ...): a SIGILL on a Pi;
  * optional ARMv8.0 extensions a Pi 4 lacks (AES, PMULL.1Q, SHA1, SHA256) or that ARMv8.0 does not promise
    (CRC32): allowed only where the code picks them at run time after checking the CPU (HWCAP).
Both kinds are allowed only in the functions of ALLOW below, each for the categories named there; any other
hit is a finding. Pointer authentication and BTI in the HINT space (paciasp, autiasp, pacibsp, autibsp,
paciaz, autiaz, xpaclri, pacia1716..., bti) execute as NOPs on ARMv8.0 by definition of the architecture;
they are counted and reported but never a finding.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

OBJDUMP = os.environ.get("OBJDUMP", "aarch64-linux-gnu-objdump")

GPR = r"(?:[wx](?:\d+|zr)|w?sp)"
# (category, mnemonic regex, optional operand regex that must also match)
CATEGORIES = [
    ("LSE atomics (v8.1)", r"(cas|casp)(a|l|al)?[bh]?|ld(add|clr|eor|set|smax|smin|umax|umin)(a|l|al)?[bh]?"
     r"|st(add|clr|eor|set|smax|smin|umax|umin)l?[bh]?|swp(a|l|al)?[bh]?", None),
    ("LOR ldlar/stllr (v8.1)", r"ldlar[bh]?|stllr[bh]?", None),
    ("RDM sqrdmlah/sqrdmlsh (v8.1)", r"sqrdml[as]h", None),
    ("dotprod (v8.2)", r"[su]dot", None),
    ("FP16 FML fmlal/fmlsl (v8.2)", r"fml[as]l2?", None),
    ("SHA3/SHA512 (v8.2)", r"eor3|rax1|xar|bcax|sha512(h|h2|su0|su1)", None),
    ("SM3/SM4 (v8.2)", r"sm3\w*|sm4\w*", None),
    ("RCpc ldapr/ldapur/stlur (v8.3/v8.4)", r"ldapr[bh]?|ldapur\w*|stlur[bh]?", None),
    ("complex fcmla/fcadd (v8.3)", r"fcmla|fcadd", None),
    ("JSCVT fjcvtzs (v8.3)", r"fjcvtzs", None),
    ("pointer authentication, non-HINT (v8.3)",
     r"pac(ia|ib|da|db|iza|izb|dza|dzb|ga)|aut(ia|ib|da|db|iza|izb|dza|dzb)|xpac[id]"
     r"|reta[ab]|bra[ab]z?|blra[ab]z?|ldra[ab]|eretaa|eretab", None),
    ("flag manipulation cfinv/rmif/setf (v8.4)", r"cfinv|rmif|setf(8|16)|axflag|xaflag", None),
    ("frint32/frint64 (v8.5)", r"frint(32|64)[xz]", None),
    ("speculation barrier sb (v8.5)", r"sb", None),
    ("MTE (v8.5)", r"irg|gmi|subps?|addg|subg|stz?2?g|stgp|ldg|ldgm|stz?gm", None),
    ("RNDR (v8.5)", r"mrs", r"\brndr(rs)?\b|s3_3_c2_c4_[01]\b"),
    ("BF16/I8MM (v8.6)", r"bf(dot|mmla|mlal[bt]|cvtn2?|cvt)|[su]mmla|usmmla|usdot|sudot", None),
    ("LS64/WFxT (v8.7)", r"ld64b|st64bv?0?|wfet|wfit", None),
    ("MOPS (v8.8)", r"cpyf?[pme]\w*|setg?[pme]\w*", None),
    ("hinted conditional branch bc.cond (v8.8)", r"bc\.\w+", None),
    ("CSSC scalar abs/cnt/ctz/min/max (v8.9)", r"abs|cnt|ctz|[su]max|[su]min", r"^\s*" + GPR + r"\b"),
    ("SVE/SME", r"ptrue\w*|pfalse|whilel[eot]|whileh[is]|cnt[bhwd]|inc[bhwd]|dec[bhwd]|addvl|addpl|rdvl"
     r"|smstart|smstop|zero|ld1r?[bhwdq]|st1[bhwdq]", None),  # none of these mnemonics exist in base A64
    ("SVE/SME", r"\w+", r"\bz\d+\.[bhsdq]\b|\bp\d+/[zm]\b"),
    # Optional in ARMv8.0: present on neither Pi 4 (no crypto extension) nor guaranteed by the architecture.
    ("crypto extension AES (optional v8.0, absent on Pi 4)", r"aes(e|d|mc|imc)", None),
    ("crypto extension PMULL.1Q (optional v8.0, absent on Pi 4)", r"pmull2?", r"\.1q\b"),
    ("crypto extension SHA1/SHA256 (optional v8.0, absent on Pi 4)", r"sha1(c|h|m|p|su0|su1)|sha256(h|h2|su0|su1)", None),
    ("CRC32 (optional v8.0)", r"crc32c?[bhwx]", None),
]
CATEGORIES = [(name, re.compile(r"^(?:%s)$" % mn), re.compile(ops) if ops else None) for name, mn, ops in CATEGORIES]

FP16_SCALAR = re.compile(r"\bh\d+\b")
FP16_VECTOR = re.compile(r"\bv\d+\.(4h|8h|h)\b")
# Half-precision loads/stores/conversions/moves of bits that ARMv8.0 already has.
FP16_BASE_OK = re.compile(r"^(fcvt|fcvtn2?|fcvtl2?|fcvtxn2?)$")
FP16_OPS = re.compile(r"^f\w+$|^[su]cvtf$")

HINT_NOPS = re.compile(r"^(paci[ab](sp|z|1716)|auti[ab](sp|z|1716)|xpaclri|bti|hint)$")

# Functions that choose these instructions at run time after a CPU check. name regex -> allowed categories.
ALLOW = [
    # compiler-builtins / libgcc outline atomics: one LSE instruction behind __aarch64_have_lse_atomics.
    (r"__aarch64_(cas|casp|swp|ldadd|ldclr|ldeor|ldset)(1|2|4|8|16)_(relax|acq|rel|acq_rel|sync)",
     {"LSE atomics (v8.1)"}),
    # ring: AES, GHASH (PMULL) and SHA-2 hardware paths, picked from OPENSSL_armcap_P (getauxval HWCAP).
    (r"ring_core_\w+__(aes_hw_\w+|aes_gcm_(enc|dec)_kernel|gcm_(init|gmult|ghash)_clmul)",
     {"crypto extension AES (optional v8.0, absent on Pi 4)",
      "crypto extension PMULL.1Q (optional v8.0, absent on Pi 4)"}),
    (r"ring_core_\w+__sha256_block_data_order_hw",
     {"crypto extension SHA1/SHA256 (optional v8.0, absent on Pi 4)"}),
    (r"ring_core_\w+__sha512_block_data_order_hw", {"SHA3/SHA512 (v8.2)"}),
    # RustCrypto sha2: aarch64 backends behind cpufeatures (getauxval HWCAP_SHA2 / HWCAP_SHA512).
    (r"sha2::sha256::aarch64\w*::\w+.*", {"crypto extension SHA1/SHA256 (optional v8.0, absent on Pi 4)"}),
    (r"sha2::sha512::aarch64\w*::\w+.*", {"SHA3/SHA512 (v8.2)"}),
    # libgcc's unwinder reads the SVE vector length (cntd) only when unwinding through an SVE frame.
    (r"(uw_\w+|execute_cfa_program\w*|execute_stack_op|aarch64_\w+|_Unwind_\w+)(\.\w+)*", {"SVE/SME"}),
]
ALLOW = [(re.compile(r"^(?:%s)$" % rx), cats) for rx, cats in ALLOW]

FUNC_RE = re.compile(r"^[0-9a-f]+ <(.+)>:$")
INSN_RE = re.compile(r"^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$")


def classify(mn, ops):
    ops = ops.split("//")[0]
    if HINT_NOPS.match(mn):
        return "HINT-space PAC/BTI (a NOP on v8.0)"
    for name, mrx, orx in CATEGORIES:
        if mrx.match(mn) and (orx is None or orx.search(ops)):
            return name
    if FP16_OPS.match(mn) and not FP16_BASE_OK.match(mn):
        if FP16_VECTOR.search(ops) or FP16_SCALAR.search(ops):
            return "FP16 arithmetic (v8.2)"
    if mn == ".inst":
        return "unknown encoding (.inst)"
    return None


def scan(path):
    out = subprocess.run([OBJDUMP, "-d", "-C", "--no-show-raw-insn", path],
                         check=True, capture_output=True, text=True).stdout
    func, hits, ninsn = "?", collections.defaultdict(collections.Counter), 0
    for line in out.splitlines():
        m = FUNC_RE.match(line)
        if m:
            func = m.group(1)
            continue
        m = INSN_RE.match(line)
        if not m:
            continue
        ninsn += 1
        cat = classify(m.group(1), m.group(2))
        if cat:
            hits[func][cat] += 1
    return hits, ninsn


def allowed(func, cat):
    return any(rx.match(func) and cat in cats for rx, cats in ALLOW)


def audit(path, quiet=False):
    hits, ninsn = scan(path)
    nops = collections.Counter()
    allowed_hits, findings = [], []
    for func, cats in sorted(hits.items()):
        for cat, n in cats.items():
            if cat.startswith("HINT-space"):
                nops[func] += n
            elif allowed(func, cat):
                allowed_hits.append((func, cat, n))
            else:
                findings.append((func, cat, n))
    if not quiet:
        print(f"audit {path}: {ninsn} instructions")
        if nops:
            print(f"  HINT-space PAC/BTI (NOPs on ARMv8.0, fine): {sum(nops.values())} in {len(nops)} functions")
        print(f"  allowed, runtime-dispatched: {len(allowed_hits)}")
        for func, cat, n in allowed_hits:
            print(f"    {n:5d}  {cat:60s} {func}")
        if findings:
            print(f"  FINDINGS (would SIGILL on a Pi or need a CPU check): {len(findings)}")
            for func, cat, n in findings:
                print(f"    {n:5d}  {cat:60s} {func}")
        else:
            print("  no findings: ARMv8.0-A clean outside the allow-list")
    return findings, allowed_hits, nops


PLANTED_ASM = r"""
    .arch armv9.3-a+sve2+crypto+sha3+sm4+fp16fml+memtag+rng+ls64+mops+cssc+sb+flagm+bf16+i8mm
    .text
    .macro fn name
    .globl \name
    .type \name, %function
\name:
    .endm
    fn plain_v80
    add x0, x0, x1
    ldaxr w2, [x3]
    stlxr w4, w2, [x3]
    pmull v0.8h, v1.8b, v2.8b
    fcvtl v0.4s, v1.4h
    fcvt h0, s1
    ldr h1, [x0]
    cnt v0.8b, v1.8b
    abs v0.4s, v1.4s
    ret
    fn pac_hint_only
    paciasp
    autiasp
    ret
    fn planted_casal
    casal w0, w1, [x2]
    fn planted_swp
    swpal x0, x1, [x2]
    fn planted_sdot
    sdot v0.4s, v1.16b, v2.16b
    fn planted_sqrdmlah
    sqrdmlah v0.4s, v1.4s, v2.4s
    fn planted_fp16
    fadd h0, h1, h2
    fn planted_fp16_vec
    fmul v0.8h, v1.8h, v2.8h
    fn planted_sha512
    sha512h q0, q1, v2.2d
    fn planted_eor3
    eor3 v0.16b, v1.16b, v2.16b, v3.16b
    fn planted_ldapr
    ldapr x0, [x1]
    fn planted_pacia
    pacia x0, x1
    fn planted_retaa
    retaa
    fn planted_aese
    aese v0.16b, v1.16b
    fn planted_pmull_1q
    pmull v0.1q, v1.1d, v2.1d
    fn planted_sha256
    sha256h q0, q1, v2.4s
    fn planted_crc32
    crc32x w0, w1, x2
    fn planted_sve
    ptrue p0.s
    fn planted_sve_add
    add z0.s, z1.s, z2.s
    fn planted_cntd
    cntd x0
    fn planted_frint32
    frint32z s0, s1
    fn planted_mte
    irg x0, x1
    fn planted_rndr
    mrs x0, rndr
    fn planted_bf16
    bfdot v0.4s, v1.8h, v2.8h
    fn planted_mops
    cpyfp [x0]!, [x1]!, x2!
    cpyfm [x0]!, [x1]!, x2!
    cpyfe [x0]!, [x1]!, x2!
    fn planted_cssc
    ctz x0, x1
    fn planted_sb
    sb
    fn plain_bitfield
    bfi x0, x1, #3, #4
    bfxil w0, w1, #0, #8
    ret
    fn __aarch64_ldadd4_acq_rel
    ldaddal w0, w1, [x2]
    ret
    fn ring_core_0_17_14__aes_hw_encrypt
    aese v0.16b, v1.16b
    ret
    fn ring_core_0_17_14__sha512_block_data_order_hw
    sha512h q0, q1, v2.2d
    ret
    fn ring_core_0_17_14__gcm_gmult_clmul
    ldadd w0, w1, [x2]
    ret
"""

PLANTED_C = r"""
#include <stdatomic.h>
_Atomic int counter;
int planted_c_atomic_add(int v) { return atomic_fetch_add(&counter, v); }
"""


def self_test():
    cc = os.environ.get("CC_AARCH64", "aarch64-linux-gnu-gcc")
    with tempfile.TemporaryDirectory() as d:
        asm, c = os.path.join(d, "planted.S"), os.path.join(d, "planted.c")
        open(asm, "w").write(PLANTED_ASM)
        open(c, "w").write(PLANTED_C)
        # The asked-for case: C with an atomic add, built for ARMv8.1-A without outline atomics -> inline LSE.
        subprocess.run([cc, "-O2", "-march=armv8.1-a", "-mno-outline-atomics", "-c", c, "-o", c + ".o"], check=True)
        subprocess.run([cc, "-c", asm, "-o", asm + ".o"], check=True)
        findings = []
        for obj in (c + ".o", asm + ".o"):
            f, _, _ = audit(obj, quiet=True)
            findings += f
        _, allowed_hits, nops = audit(asm + ".o", quiet=True)
    found = {func: cat for func, cat, _ in findings}
    expected = {
        "planted_c_atomic_add": "LSE atomics (v8.1)",
        "planted_casal": "LSE atomics (v8.1)", "planted_swp": "LSE atomics (v8.1)",
        "planted_sdot": "dotprod (v8.2)", "planted_sqrdmlah": "RDM sqrdmlah/sqrdmlsh (v8.1)",
        "planted_fp16": "FP16 arithmetic (v8.2)", "planted_fp16_vec": "FP16 arithmetic (v8.2)",
        "planted_sha512": "SHA3/SHA512 (v8.2)", "planted_eor3": "SHA3/SHA512 (v8.2)",
        "planted_ldapr": "RCpc ldapr/ldapur/stlur (v8.3/v8.4)",
        "planted_pacia": "pointer authentication, non-HINT (v8.3)",
        "planted_retaa": "pointer authentication, non-HINT (v8.3)",
        "planted_aese": "crypto extension AES (optional v8.0, absent on Pi 4)",
        "planted_pmull_1q": "crypto extension PMULL.1Q (optional v8.0, absent on Pi 4)",
        "planted_sha256": "crypto extension SHA1/SHA256 (optional v8.0, absent on Pi 4)",
        "planted_crc32": "CRC32 (optional v8.0)",
        "planted_sve": "SVE/SME", "planted_sve_add": "SVE/SME", "planted_cntd": "SVE/SME",
        "planted_frint32": "frint32/frint64 (v8.5)", "planted_mte": "MTE (v8.5)", "planted_rndr": "RNDR (v8.5)",
        "planted_bf16": "BF16/I8MM (v8.6)", "planted_mops": "MOPS (v8.8)",
        "planted_cssc": "CSSC scalar abs/cnt/ctz/min/max (v8.9)", "planted_sb": "speculation barrier sb (v8.5)",
        # allow-listed name, but a category the allow-list does not grant it: still a finding
        "ring_core_0_17_14__gcm_gmult_clmul": "LSE atomics (v8.1)",
    }
    errors = []
    for func, cat in expected.items():
        if found.get(func) != cat:
            errors.append(f"planted {func}: expected {cat!r}, got {found.get(func)!r}")
    for func in found:
        if func not in expected:
            errors.append(f"unexpected finding in {func}: {found[func]!r}")
    allowed_funcs = {f for f, _, _ in allowed_hits}
    for func in ("__aarch64_ldadd4_acq_rel", "ring_core_0_17_14__aes_hw_encrypt",
                 "ring_core_0_17_14__sha512_block_data_order_hw"):
        if func not in allowed_funcs:
            errors.append(f"{func} should be allowed")
    if "pac_hint_only" not in nops:
        errors.append("paciasp/autiasp should be counted as HINT-space NOPs")
    for e in errors:
        print("self-test FAIL:", e)
    if errors:
        return 1
    print(f"self-test ok: {len(expected)} planted post-v8.0/optional instructions caught, "
          f"{len(allowed_funcs)} allow-listed functions passed, HINT-space PAC ignored, v8.0 baseline clean")
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    findings, _, _ = audit(argv[1])
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
