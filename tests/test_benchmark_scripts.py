"""The prepared device scripts run with only what the GPU machine has (torch, timm, numpy, yaml, tqdm)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT_ON_DEVICE = ["rasterio", "faiss", "leafmap", "umap", "pandas", "pyarrow", "bigearthnet_common",
                    "matplotlib", "ipywidgets"]


def run_without_data_stack(script: str, args: list[str]) -> None:
    """Run ``benchmarks/<script>`` with the packages the device machine lacks made unimportable."""
    code = (
        "import sys, runpy\n"
        f"for m in {ABSENT_ON_DEVICE!r}: sys.modules[m] = None  # import of these now fails\n"
        f"sys.argv = [{script!r}, *{args!r}]\n"
        f"runpy.run_path('benchmarks/{script}', run_name='__main__')\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]


def test_gpu_bench_runs_without_the_data_stack(tmp_path):
    run_without_data_stack("gpu_bench.py", ["--config", "tiny_cpu", "--batch", "2", "--steps", "1", "--warmup", "1",
                                            "--checked", "--eager-batch", "3", "--embed-batch", "2",
                                            "--out", str(tmp_path), "model.encoder.depth=1"])
    report = json.loads((tmp_path / "gpu_bench.json").read_text())
    run = report["train"][0]
    assert run["pairs_per_s"] > 0 and run["flops_per_step"] > 1e8 and run["batch"] == 2
    assert [(r["batch"], r["finite_check"]) for r in report["train"]] == [(2, "deferred"), (3, "deferred"),
                                                                         (2, "every step")]
    assert all("error" not in r for r in report["train"])
    assert set(report["embed"]["pairs_per_s_by_modality"]) == {"s1", "s2"}


def test_step_ops_counts_every_phase_of_the_eager_step():
    res = subprocess.run([sys.executable, "benchmarks/bench_step_ops.py", "--config", "tiny_cpu", "model.encoder.depth=1"],
                         cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:5]] for r in res.stdout.splitlines()
            if r.startswith("| ") and "---" not in r and "phase" not in r}
    total, kernels, casts = (int(x.strip("*")) for x in rows["**step**"])
    assert total > kernels > casts > 0
    assert rows["EMA update"][1] == "1" and rows["AdamW (fused)"][1] == "6"  # one foreach lerp; fused AdamW
    assert sum(int(v[0]) for k, v in rows.items() if k != "**step**") == total



def test_gpu_profile_splits_step_time_by_kernel_kind(tmp_path):
    run_without_data_stack("gpu_profile.py", ["--config", "tiny_cpu", "--batch", "2", "--steps", "1", "--warmup", "1",
                                              "--backends", "default", "math", "--out", str(tmp_path),
                                              "model.encoder.depth=1"])
    runs = json.loads((tmp_path / "gpu_profile.json").read_text())["runs"]
    assert [(r["attention_backend"], r["compile"]) for r in runs] == [("default", "eager"), ("math", "eager")]
    for r in runs:
        assert "error" not in r and r["step_ms"] > 0
        assert r["split_ms"]["matmul"] > 0 and abs(sum(r["split_ms"].values()) - r["busy_ms"]) < 1e-6
    # the math backend decomposes attention into matmuls and a softmax: only its thin wrapper operator is left
    attention = [r["split_ms"].get("attention", 0.0) for r in runs]
    assert attention[0] > 4 * attention[1], attention


def test_kernel_kinds_of_names_seen_on_the_h200():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_profile import kernel_kind

    seen = {"nvjet_sm90_tst_192x192_64x4_2x1_v_bz_coopB_bias_TNN": "matmul",
            "cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_3": "attention",
            "triton_per_fused_native_layer_norm_0": "fused (triton)",
            "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float>": "layer norm",
            "void at::native::multi_tensor_apply_kernel<FusedAdamWMathFunctor>": "optimiser",
            "void at::native::unrolled_elementwise_kernel<copy_kernel_cuda>": "copy / cast",
            "void at::native::vectorized_elementwise_kernel<4, GeluCUDAKernelImpl>": "elementwise / reduction",
            "Memcpy HtoD (Pageable -> Device)": "copy / cast", "aten::addmm": "matmul",
            "ncclDevKernel_Broadcast_RING_LL": "other"}
    assert {name: kernel_kind(name) for name in seen} == seen
