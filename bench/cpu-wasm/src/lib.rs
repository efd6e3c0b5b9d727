//! Wasm exports over the cases of `examples/cpu_bench.rs` (timed by `bench/cpu.mjs`).

#[path = "../../../examples/cpu_bench.rs"]
#[allow(dead_code)]
mod cases;

/// Number of cases (their names are `cases::CASES`, in this order).
#[no_mangle]
pub extern "C" fn bench_cases() -> u32 {
    cases::CASES.len() as u32
}

/// Runs case `case` `iters` times; returns the number of successful calls.
#[no_mangle]
pub extern "C" fn bench_run(case: u32, iters: u32) -> u32 {
    cases::run(case as usize, iters)
}
