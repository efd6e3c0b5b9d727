// A module worker that burns CPU on request (`?n=` rounds of integer hashing), for
// calibrating isolate CPU profiles against the thread's CPU time (bench/delivery-cpu.mjs
// --calibrate).
export default {
  async fetch(request) {
    const n = Number(new URL(request.url).searchParams.get("n") ?? 0);
    let h = 2166136261;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ i, 16777619) >>> 0;
    return new Response(String(h));
  },
};
