"""The speed and memory benchmark's report: ``benchmark.md``'s tables (which
docs/PERFORMANCE.md includes through scripts/render_docs.py) and the console rows."""

from __future__ import annotations

from scripts.benchmarking import AMP_ROLES, STAGES, VARIANTS
from util.log import get_logger
from util.stamp import describe

logger = get_logger(__name__)


def describe_agreement(a: dict | None) -> str:
    """One table cell from ``agreement``'s figures (empty without)."""
    if not a:
        return ""
    return (
        f"{100 * a['pixel_agreement']:.3f}% of pixels ({100 * a['decided_pixel_agreement']:.3f}% where not a "
        f"near-tie); probabilities within {a['max_prob_difference']:.1e}"
    )


def markdown(report: dict) -> str:
    """The report as markdown tables, under the stamp of the machine that measured it
    (docs/PERFORMANCE.md includes them through scripts/render_docs.py)."""
    autocast = "float16" if report["device"] == "cuda" else "bfloat16"
    names = [n for n in VARIANTS if n in report["conv_gflops"]]
    titles = {
        "float32": "float32 NCHW",
        "float32_channels_last": "float32 channels-last",
        "amp": f"{autocast} NCHW",
        "amp_channels_last": f"{autocast} channels-last",
    }
    bf16 = ", ".join(report.get("cpu_bfloat16_instructions") or []) or "none"
    clock = "" if report.get("clock", "wall") == "wall" else f"; times in {report['clock']}"
    lines = [
        f"Measured on {describe(report['stamp'])} ({report['device']}); CPU bfloat16 instructions: {bf16}{clock}.",
        "",
        "| precision and layout | " + " | ".join(titles[n] for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
        "| 3x3 conv 256->256 at 1/4 of the padded frame (GFLOP/s) | "
        + " | ".join(str(report["conv_gflops"][n]) for n in names)
        + " |",
        "| key encoder on one padded frame (s) | "
        + " | ".join(str(report["key_encoder_seconds"][n]) for n in names)
        + " |",
        "",
        f"In float32, channels-last changes the key encoder's outputs by up to "
        f"{report['key_encoder_float32_layout_difference']:.1e} (other kernels, other rounding).",
        "",
        "| frames | objects | implementation | frames/s | speed-up | peak MB | working MB | GFLOP/frame | "
        "share of conv throughput | seconds: " + " / ".join(STAGES) + " | agreement with the oracle | "
        "agreement with float32 |",
        "|---" * 12 + "|",
    ]
    for row in report["inference"]:
        for role in ("oracle", "engine") + AMP_ROLES:
            if role not in row:
                continue
            r = row[role]
            memory = f" ({r['memory_ratio']})" if "memory_ratio" in r else ""
            over_float32 = f" ({r['speedup_over_float32']}x float32)" if "speedup_over_float32" in r else ""
            speedup = f"{r['speedup']}x" if "speedup" in r else "1x" if role == "oracle" else ""
            lines.append(
                f"| {row['frames']} | {row['objects']} | {role} | {r['fps']}{over_float32} | "
                f"{speedup} | {r['peak_memory_mb']:.0f}{memory} | {r['working_memory_mb']:.0f} | "
                f"{r['gflop_per_frame']} | {r['fraction_of_conv_throughput']} | "
                + " / ".join(f"{r['stages'][s]:.1f}" for s in STAGES)
                + f" | {describe_agreement(r if 'pixel_agreement' in r else None)} | "
                f"{describe_agreement(r.get('float32_agreement'))} |"
            )
    if report["training"]:
        lines += [
            "",
            "| training batch | crop | implementation | s/iteration | speed-up | peak MB | AMP |",
            "|---" * 7 + "|",
        ]
        for row in report["training"]:
            for role in ("oracle", "engine"):
                if role in row:
                    r = row[role]
                    speedup = f"{row['speedup']}x" if role == "engine" and "speedup" in row else "1x"
                    lines.append(
                        f"| {row['batch']} | {row['crop']} | {role} | {r['seconds_per_iteration']} | "
                        f"{speedup} | {r['peak_memory_mb']:.0f} | {r['amp']} |"
                    )
    return "\n".join(lines) + "\n"


def log_row(row: dict) -> None:
    """One video's figures on the console."""
    logger.info(f"{row['frames']} frames, {row['objects']} object(s):")
    logger.info(
        f"  {'':15s} {'fps':>7s} {'peak MB':>8s} {'work MB':>8s} {'GFLOP/f':>8s} {'share':>6s} "
        + " ".join(f"{s:>14s}" for s in STAGES)
    )
    roles = [r for r in ("engine", *AMP_ROLES, "oracle") if r in row]
    for role in roles:
        r = row[role]
        logger.info(
            f"  {role:15s} {r['fps']:7.3f} {r['peak_memory_mb']:8.0f} {r['working_memory_mb']:8.0f} "
            f"{r['gflop_per_frame']:8.1f} {r['fraction_of_conv_throughput']:6.3f} "
            + " ".join(f"{r['stages'][s]:14.2f}" for s in STAGES)
        )
    for role in roles:
        r = row[role]
        if "speedup" in r:
            logger.info(
                f"  {role}: speed-up {r['speedup']}x, memory ratio {r['memory_ratio']} (working memory "
                f"{r['working_memory_ratio']}), pixel agreement {r['pixel_agreement']:.6f} "
                f"({r['decided_pixel_agreement']:.6f} where not a near-tie), max prob difference "
                f"{r['max_prob_difference']:.2e} ({r['prob_values_beyond_1e-4']:.2e} of values beyond 1e-4)"
            )
        if "float32_agreement" in r:
            logger.info(
                f"  {role}: {r['speedup_over_float32']}x float32, masks: {describe_agreement(r['float32_agreement'])}"
            )
