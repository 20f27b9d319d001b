// attention_bf16_wgmma: FlashAttention's forward on Hopper's warpgroup MMAs (wgmma.mma_async, bf16 in, f32
// accumulators). A persistent grid of one block of two warpgroups per multiprocessor works through the items
// (64-query tile, pair of query heads of one kv head): each warpgroup computes its head's 64 rows, and both read the
// same key and value tiles of 128 keys, which stream through shared memory once for the pair, three tiles deep
// (cp.async: warpgroup 0 copies the keys, warpgroup 1 the values, each tile's arrival counted by an mbarrier). The
// block's tiles form one stream across its items, so the next item's q and first key tile load while the current
// item's last tile is multiplied, and its output leaves by the bulk-copy unit while the next item starts: at 512
// tokens an item is ~2.5 key tiles, and a block per item spent much of its life on its first loads and last stores.
// q stays in registers as wgmma's A fragments; k and v are read by wgmma straight from shared memory, laid out in the
// 128-byte swizzle its descriptors name (k as stored, K-major; v as stored too, through the descriptor's transposed,
// MN-major form), so no thread rearranges them. q arrives in a padded stage of its warpgroup's own (cp.async, 16
// bytes a copy), from which ldmatrix makes wgmma's A fragments; the output goes through the last key tile's stage and
// out row by row (a row is 256 contiguous bytes). The scores' accumulators become p's A fragments in registers. Each
// iteration multiplies tile j's scores and tile j - 1's p·v together and computes tile j's probabilities (the special
// function units' share) while that p·v runs. The warpgroups take turns at issuing their products (FlashAttention-3's
// ping-pong), so one computes its probabilities while the tensor cores run the other's products; with a block barrier
// per tile they had run in lockstep, both waiting for their scores at once (+14-20 % at 512-32,768 tokens, docs/
// PERFORMANCE.md, 2026-12-02 16:10). The online softmax is attention_mma_cuda.cu's (attention_softmax.cuh), so both
// kernels round the same way, and an item's values do not depend on which block takes it or what came before.
#include "ops/cuda/attention_wgmma_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "ops/cuda/attention_softmax.cuh"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/device_facts.h"
#include "ops/cuda/mma_util.cuh"
#include "ops/cuda/wgmma_util.cuh"

namespace embedserve::cuda {
namespace {

constexpr int kHd = 128;
constexpr int kKeys = 128;         // keys per tile
constexpr int kDepth = 3;          // tiles in shared memory: j - 1 (its v), j (its k), j + 1 (landing)
constexpr int kHeadsPerBlock = 2;  // warpgroups per block, one query head each, sharing the kv head's tiles
constexpr int kThreads = 128 * kHeadsPerBlock;
// A tile: k, then v, each two halves of 64 dims (128 bytes a row: one swizzle row) of kKeys rows.
constexpr int kHalfBytes = kKeys * 128;
constexpr int kTileBytes = 2 * kHalfBytes;
constexpr int kStageBytes = 2 * kTileBytes;
// q in (a stage per warpgroup), and the output out (warpgroup 0's in the last key tile's k, 1's in its v): 64 rows
// of 256 bytes padded by 16, so the 8 rows each ldmatrix phase reads (and the 8 rows a warp's accumulator stores write)
// fall in distinct banks; rows stay 16-byte aligned, as cp.async and the bulk copies need.
constexpr int kRowStride = kHd * 2 + 16;
constexpr int kRowsStageBytes = kAttentionQueryTile * kRowStride;
static_assert(kRowsStageBytes <= kTileBytes, "a warpgroup's output must fit in a key tile's k or v");
// The mbarriers: each stage's k and v landed, and each warpgroup's q.
constexpr int kBarrierBytes = 8 * (2 * kDepth + kHeadsPerBlock);
// The swizzle repeats every 1,024 bytes (8 rows) and is applied to address bits, so tiles start 1,024-aligned:
// the slack lets the kernel round its dynamic shared memory's start up, and holds the mbarriers (1,024 bytes of slack
// leave at least kBarrierBytes before the stages or after them). All of the H200's 227 KB a block may have.
constexpr size_t kSmemBytes = size_t(kDepth) * kStageBytes + size_t(kHeadsPerBlock) * kRowsStageBytes + 1024;
static_assert(kSmemBytes <= 227 * 1024, "more shared memory than an sm_90 block may have");

// Where 16-byte unit `unit` (dims 8·unit..8·unit+7) of row `row` lives in a k or v tile: the 128-byte swizzle XORs
// the unit's index within its 128-byte row with the row's index within its 8-row group, so the 8 rows a wgmma
// core matrix reads fall in distinct banks.
__device__ __forceinline__ uint32_t swizzled(int row, int unit) {
  return (unit / 8) * kHalfBytes + row * 128 + (((unit % 8) ^ (row % 8)) << 4);
}

__global__ void __launch_bounds__(kThreads, 1)
    attention_wgmma_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                           const __nv_bfloat16* __restrict__ v, __nv_bfloat16* __restrict__ out, AttentionShape shape,
                           const int32_t* __restrict__ q_offsets, const int32_t* __restrict__ q_positions,
                           const int32_t* __restrict__ kv_offsets, const int32_t* __restrict__ tiles, int n_items) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smem_bytes[];
  const uint32_t raw = smem_address(smem_bytes), smem = (raw + 1023u) & ~1023u;
  // The mbarriers live in the alignment's slack: before the stages where it left room, else after them.
  const uint32_t barriers =
      smem - raw >= kBarrierBytes ? raw : smem + kDepth * kStageBytes + kHeadsPerBlock * kRowsStageBytes;
  const int pairs = shape.heads / kHeadsPerBlock, group = threadIdx.x / 128, wg_thread = threadIdx.x % 128;
  const int64_t q_stride = shape.q_stride, kv_stride = shape.kv_stride, out_stride = int64_t{shape.heads} * kHd;
  const int warp = wg_thread / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int r_lo = warp * 16 + g, r_hi = r_lo + 8;  // this thread's two rows of a tile
  const uint32_t rows_stage = smem + kDepth * kStageBytes + group * kRowsStageBytes;  // the warpgroup's q
  auto stage_address = [&](int stage) { return smem + stage * kStageBytes; };
  auto after = [](int stage) { return stage + 1 == kDepth ? 0 : stage + 1; };
  // Landed-tile barriers: stage s's k (loaded by warpgroup 0), its v (by warpgroup 1), and each warpgroup's q. The
  // n-th tile of the block's stream lands in stage n % kDepth, in that stage's phase n / kDepth.
  auto k_landed = [&](int stage) { return barriers + 8 * stage; };
  auto v_landed = [&](int stage) { return barriers + 8 * (kDepth + stage); };
  const uint32_t q_landed = barriers + 8 * (2 * kDepth + group);
  auto parity = [](int n) { return uint32_t(n / kDepth) & 1u; };
  if (threadIdx.x == 0)
    for (int b = 0; b < kBarrierBytes / 8; ++b) mbarrier_init(barriers + 8 * b, 128);
  __syncthreads();

  // The block's items in rounds of gridDim.x, every other round taken in reverse: the tiles come furthest (most
  // work) first, so each block gets a share of every round's work.
  auto item_of = [&](int round) {
    return round * int(gridDim.x) + (round % 2 ? int(gridDim.x) - 1 - int(blockIdx.x) : int(blockIdx.x));
  };
  // Item i is tile i / pairs for head pair i % pairs; both heads of a pair read one kv head (heads per kv head is
  // even), so k_len, kv_head and kv_begin are the same for both warpgroups.
  auto item_tile = [&](int item) {
    return attention_tile(shape, q_offsets, q_positions, kv_offsets, tiles, item / pairs,
                          (item % pairs) * kHeadsPerBlock + group, 0, kAttentionQueryTile);
  };
  auto key_tiles = [](const AttentionTile& it) { return (it.k_len + kKeys - 1) / kKeys; };
  // The last key tile reaches k_len, the tile's furthest row: when that is within its first 64 keys, the other 64
  // are past every row, so they are neither loaded nor multiplied (their p would be exactly 0: skipping them
  // leaves every value as it was, and a diagonal tile costs half). A short sequence's tile is all diagonal.
  auto whole_tile = [&](const AttentionTile& it, int j) { return j + 1 < key_tiles(it) || it.k_len - j * kKeys > 64; };

  // Warpgroup 0 stages the key tiles' k, warpgroup 1 their v: rows [128j, 128j + 128) of the kv head (the first 64
  // unless whole), zeros past k_len. 16 threads read a row's 256 bytes side by side: a thread copies unit
  // `copy_unit` of rows copy_row0, copy_row0 + 8, ..., whose places in the swizzle are 1,024 bytes apart (8 rows keep
  // the row's index within its 8-row group), so its addresses are stepped, not recomputed (recomputing them was
  // about a fifth of the kernel's instructions).
  const __nv_bfloat16* const kv = group == 0 ? k : v;
  const uint32_t kv_part = group == 0 ? 0 : kTileBytes;  // where the warpgroup's half of a stage starts
  const int copy_unit = wg_thread % (kHd / 8), copy_row0 = wg_thread / (kHd / 8);
  constexpr int kRowsPerPass = 128 / (kHd / 8);
  auto load_tile = [&](const AttentionTile& it, int j, int stage) {
    const uint32_t dst = stage_address(stage) + kv_part + swizzled(copy_row0, copy_unit);
    const int64_t head_unit = it.kv_begin * kv_stride + int64_t{it.kv_head} * kHd + copy_unit * 8;  // row 0's
    const int first_key = j * kKeys + copy_row0, passes = (whole_tile(it, j) ? kKeys : 64) / kRowsPerPass;
    const __nv_bfloat16* row = kv + head_unit + int64_t{first_key} * kv_stride;
    const int64_t step = int64_t{kRowsPerPass} * kv_stride;
#pragma unroll
    for (int i = 0; i < kKeys / kRowsPerPass; ++i) {
      if (i < passes) {
        const bool in = first_key + i * kRowsPerPass < it.k_len;
        copy16_async(dst + i * kRowsPerPass * 128, in ? row : kv + head_unit, in ? 16 : 0);
      }
      row += step;
    }
  };
  // The warpgroup's q rows of an item (zeros past n_rows): 16 threads side by side per row, only the bands of
  // warps that hold a row (a warp past n_rows takes zeros as its fragments; a short sequence's tile is mostly such
  // warps).
  auto load_q = [&](const AttentionTile& it) {
    const __nv_bfloat16* const q_head = q + it.q_begin * q_stride + int64_t{it.head} * kHd;
    const int rows_staged = (it.n_rows + 15) / 16 * 16;
    for (int c = wg_thread; c < rows_staged * (kHd / 8); c += 128) {
      const int row = c / (kHd / 8), unit = c % (kHd / 8);
      const bool in = row < it.n_rows;
      copy16_async(rows_stage + row * kRowStride + unit * 16, q_head + (in ? row * q_stride + unit * 8 : 0),
                   in ? 16 : 0);
    }
  };
  // A tile's part of this warpgroup (and the q before it) landed, and visible to wgmma's reads (the async proxy).
  auto wait_landed = [](uint32_t barrier, uint32_t phase) {
    mbarrier_wait(barrier, phase);
    fence_async_shared();
  };

  // The two warpgroups take turns at issuing their products (named barriers 3 and 4: each waits for its turn, and
  // gives the other one its turn once its products are queued), so one's softmax runs while the tensor cores work
  // on the other's products. Warpgroup 0 goes first. Both run the same items and tiles, so they take as many turns.
  constexpr int kTurnOf0 = 3;  // warpgroup g's turn: named barrier kTurnOf0 + g
  auto my_turn = [&] { named_barrier_sync(kTurnOf0 + group, kThreads); };
  auto their_turn = [&] { named_barrier_arrive(kTurnOf0 + 1 - group, kThreads); };
  // Barrier 5: warpgroup 1 is done reading an item's last k tile (warpgroup 0's output goes there). Barrier 6:
  // warpgroup 0 is done reading its last v tile (warpgroup 1's output goes there).
  constexpr int kLastKeysRead = 5, kLastValuesRead = 6;

  uint32_t qa[kHd / 16][4];  // q as wgmma's A fragments: read from the stage once it has landed
  // The output in two halves of 64 dims, one wgmma's accumulators each: o[half][4n + e] is dim 64·half + 8n + 2t +
  // e % 2 of row g (e < 2) or g + 8, so the halves together lie as rescale_outputs and store_outputs take them.
  float o[2][32];
  float s[kKeys / 2];
  uint32_t pa[kKeys / 16][4];
  SoftmaxRows rows;
  const float scale_log2 = shape.scale * 1.4426950408889634f;  // softmax in base 2: exp(x) = exp2(x · log2 e)
  int pos_lo = -1, pos_hi = -1, first_pos = 0;

  // s = q · kᵀ of the tile in `stage`, issued and committed, not waited for: per 64 keys, 8 steps of 16 dims. B
  // (k = dim, n = key) is k as stored: K-major; a step's 16 dims are 32 bytes into a half's 128-byte rows; 8-row
  // groups 1,024 bytes apart (the leading offset is unused). Keys not multiplied are left to the mask (-inf).
  auto scores = [&](int stage, auto halves) {
    const uint64_t ks = swizzled_descriptor(stage_address(stage), 16, 1024);
    wgmma_fence();
#pragma unroll
    for (int kn = 0; kn < decltype(halves)::value; ++kn)
#pragma unroll
      for (int kd = 0; kd < kHd / 16; ++kd)
        wgmma_64x64x16<0>(s + 32 * kn, qa[kd],
                          descriptor_plus(ks, (kd / 4) * kHalfBytes + kn * 64 * 128 + (kd % 4) * 32), kd > 0);
    wgmma_commit();
  };
  // o += p · v of the tile in `stage`, issued and committed: per 16 keys, one product per half of the dims. B
  // (k = key, n = dim) is v as stored: MN-major; a step's 16 keys are two 8-row groups (2,048 bytes on), 1,024 bytes
  // apart; a half is 64 dims, one swizzle row wide (the leading offset to the next half is not reached).
  auto values = [&](int stage, auto steps) {
    const uint64_t vs = swizzled_descriptor(stage_address(stage) + kTileBytes, kHalfBytes, 1024);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < decltype(steps)::value; ++kk)
#pragma unroll
      for (int half = 0; half < 2; ++half)
        wgmma_64x64x16<1>(o[half], pa[kk], descriptor_plus(vs, half * kHalfBytes + kk * 2048));
    wgmma_commit();
  };
  auto masked = [&](int j) { return j * kKeys + kKeys - 1 > first_pos; };

  // An item's tile 0 alone; then each iteration multiplies tile j's scores and the previous tile's p·v together,
  // and computes tile j's probabilities while that p·v runs. No product is in flight from one iteration to the
  // next, nor across a branch (ptxas would serialise them: whether the last tile is whole picks between whole
  // copies of an iteration), and each value takes the same operations in the same order as in
  // attention_mma_cuda.cu's loop. Each issues its products in its turn, then stages its part of the stream's next
  // tile (`load`): the turn is what frees that stage (see the loop).
  using Whole = std::integral_constant<int, 2>;
  using Half = std::integral_constant<int, 1>;
  float alpha_lo, alpha_hi;
  auto first = [&](int stage, int n, bool last, auto halves, auto load) {
    wait_landed(k_landed(stage), parity(n));
    my_turn();
    scores(stage, halves);
    their_turn();
    load();
    wgmma_wait<0>();
    if (group == 1 && last) named_barrier_arrive(kLastKeysRead, kThreads);
    pin<kKeys / 2>(s);
    softmax_rescale<kKeys>(s, 0, pos_lo, pos_hi, masked(0), scale_log2, rows, alpha_lo, alpha_hi);
    softmax_probabilities<kKeys>(s, scale_log2, rows);
    pack_probabilities<kKeys>(s, pa);
  };
  auto iteration = [&](int j, int stage, int previous, int n, bool last, auto halves, auto load) {
    wait_landed(k_landed(stage), parity(n));
    wait_landed(v_landed(previous), parity(n - 1));
    pin<kKeys / 2>(s);
    pin<32>(o[0]);
    pin<32>(o[1]);
    my_turn();
    scores(stage, halves);
    values(previous, std::integral_constant<int, kKeys / 16>());  // tile j - 1 is not the last: whole
    their_turn();
    load();
    wgmma_wait<1>();  // the scores; p·v may still run
    if (group == 1 && last) named_barrier_arrive(kLastKeysRead, kThreads);
    pin<kKeys / 2>(s);
    softmax_rescale<kKeys>(s, j * kKeys, pos_lo, pos_hi, masked(j), scale_log2, rows, alpha_lo, alpha_hi);
    softmax_probabilities<kKeys>(s, scale_log2, rows);
    wgmma_wait<0>();  // p·v of tile j - 1
    pin<32>(o[0]);
    pin<32>(o[1]);
    rescale_outputs<kHd>(&o[0][0], alpha_lo, alpha_hi);
    pack_probabilities<kKeys>(s, pa);  // pa was p·v's operand until now
  };
  auto last_values = [&](int stage, int n, auto steps) {
    wait_landed(v_landed(stage), parity(n));
    pin<32>(o[0]);
    pin<32>(o[1]);
    my_turn();
    values(stage, steps);
    their_turn();
    wgmma_wait<0>();
    if (group == 0) named_barrier_arrive(kLastValuesRead, kThreads);
    pin<32>(o[0]);
    pin<32>(o[1]);
  };

  // The block is persistent: its key tiles are one stream through the stages, and while it works on an item's last
  // tile, the next item's q and first tile are on their way, so only the block's first item waits for its loads
  // (at 512 tokens an item is ~2.5 key tiles: a block per item spent much of its life on its first loads and its
  // last stores). Stage reuse needs no barrier of its own: a warpgroup stages tile n + 1 (into tile n - 2's stage)
  // in its turn of tile n, and the other warpgroup has then queued its products of tile n - 1 (warpgroup 0 stages
  // k: warpgroup 1 has waited for its scores of tile n - 2) or of tile n (warpgroup 1 stages v: warpgroup 0 has
  // waited for its p·v of tile n - 2).
  int round = 0, n = 0, items = 0;  // n: the stream's tile; items: this block's items begun
  AttentionTile cur = item_tile(item_of(0));  // grid ≤ items: every block has a first item
  load_q(cur);
  load_tile(cur, 0, 0);
  mbarrier_arrive_on_copies(q_landed);
  mbarrier_arrive_on_copies(group == 0 ? k_landed(0) : v_landed(0));
  if (group == 1) named_barrier_arrive(kTurnOf0, kThreads);  // warpgroup 0's first turn
  int stage = 0;
  for (;;) {
    const int next_item = item_of(round + 1);
    const bool has_next = next_item < n_items;
    const AttentionTile next = has_next ? item_tile(next_item) : cur;
    const int n_rows = cur.n_rows, n_key_tiles = key_tiles(cur);
    pos_lo = r_lo < n_rows ? q_positions[cur.q_begin + r_lo] : -1;
    pos_hi = r_hi < n_rows ? q_positions[cur.q_begin + r_hi] : -1;
    first_pos = q_positions[cur.q_begin];  // the tile's nearest row: key tiles up to it need no mask
    const bool warp_has_rows = warp * 16 < n_rows;
#pragma unroll
    for (int i = 0; i < 32; ++i) o[0][i] = o[1][i] = 0.0f;
    rows = SoftmaxRows();
    // This warpgroup's part of the stream's next tile after tile j of this item: tile j + 1, or the next item's
    // first with its q.
    auto load_after = [&](int j, int into) {
      return [&, j, into] {
        if (j + 1 < n_key_tiles) {
          load_tile(cur, j + 1, into);
        } else if (has_next) {
          load_q(next);
          load_tile(next, 0, into);
          mbarrier_arrive_on_copies(q_landed);
        } else {
          return;
        }
        mbarrier_arrive_on_copies(group == 0 ? k_landed(into) : v_landed(into));
      };
    };

    mbarrier_wait(q_landed, uint32_t(items) & 1u);
    ++items;
    // q as A fragments, for the whole head: row g / g+8, columns 2t, 2t+1 (+8); ldmatrix lane l names row l % 16
    // of the warp's band at column 8 · (l / 16) of each 16-column step.
    if (warp_has_rows) {
      const uint32_t lane_row = rows_stage + (warp * 16 + lane % 16) * kRowStride + (lane / 16) * 16;
#pragma unroll
      for (int kd = 0; kd < kHd / 16; ++kd) ldmatrix_x4(qa[kd], lane_row + kd * 32);
    } else {
#pragma unroll
      for (int kd = 0; kd < kHd / 16; ++kd) qa[kd][0] = qa[kd][1] = qa[kd][2] = qa[kd][3] = 0u;
    }
    warpgroup_barrier(group);  // every warp has read its q: the next item's may land in the stage
    if (whole_tile(cur, 0))
      first(stage, n, n_key_tiles == 1, Whole(), load_after(0, after(stage)));
    else
      first(stage, n, n_key_tiles == 1, Half(), load_after(0, after(stage)));
#pragma unroll 1
    for (int j = 1; j < n_key_tiles; ++j) {
      const int previous = stage;
      stage = after(stage);
      ++n;
      if (whole_tile(cur, j))
        iteration(j, stage, previous, n, j + 1 == n_key_tiles, Whole(), load_after(j, after(stage)));
      else
        iteration(j, stage, previous, n, j + 1 == n_key_tiles, Half(), load_after(j, after(stage)));
    }
    if (whole_tile(cur, n_key_tiles - 1))
      last_values(stage, n, std::integral_constant<int, kKeys / 16>());
    else
      last_values(stage, n, std::integral_constant<int, 4>());

    // The output rows, rounded as store_outputs rounds them, into the last key tile's stage: warpgroup 0's into
    // its k once warpgroup 1 has its scores, warpgroup 1's into its v once warpgroup 0 has its p·v; then one bulk
    // copy per row that exists. That half of the stage is next written by this warpgroup's copies two tiles on.
    finish_sums(rows);
    named_barrier_sync(group == 0 ? kLastKeysRead : kLastValuesRead, kThreads);
    const uint32_t out_stage = stage_address(stage) + kv_part;
    __nv_bfloat16* const staged = reinterpret_cast<__nv_bfloat16*>(smem_bytes + (out_stage - raw));
    if (warp_has_rows)
      store_outputs<kHd>(&o[0][0], rows, staged + r_lo * (kRowStride / 2) + 2 * t, true,
                         staged + r_hi * (kRowStride / 2) + 2 * t, true);
    fence_async_shared();  // the stage's writes, visible to the bulk copies (the async proxy)
    warpgroup_barrier(group);
    if (wg_thread < n_rows) {
      store_bulk(out + (cur.q_begin + wg_thread) * out_stride + int64_t{cur.head} * kHd,
                 out_stage + wg_thread * kRowStride, kHd * 2);
      commit_bulk();
      wait_bulk_read();
    }
    if (!has_next) break;
    ++round;
    ++n;
    cur = next;
    stage = after(stage);
  }
  // Warpgroup 1's last turn-giving (after its last products) is taken here, so the barrier ends the block balanced.
  if (group == 0) named_barrier_sync(kTurnOf0, kThreads);
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0; }

// Whether the current device is an sm_90 GPU (the facts are cached per device).
bool device_is_sm90() {
  DeviceFacts facts;
  return current_device_facts(&facts).ok() && facts.is_sm90();
}

// EMBEDSERVE_ATTENTION_KERNEL=mma runs the mma.sync kernel on Hopper too: the benchmarks set it to measure the
// kernels side by side, and it is a way back should this kernel misbehave on some machine.
bool wgmma_allowed() {
  static const bool allowed = [] {
    const char* choice = std::getenv("EMBEDSERVE_ATTENTION_KERNEL");
    return choice == nullptr || std::strcmp(choice, "mma") != 0;
  }();
  return allowed;
}

}  // namespace

bool attention_bf16_wgmma_supports(const AttentionShape& shape, const void* q, const void* k, const void* v,
                                   const void* out) {
  return shape.head_dim == kHd && shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0 &&
         (shape.heads / shape.kv_heads) % kHeadsPerBlock == 0 && aligned(k, 16) && aligned(v, 16) &&
         aligned(q, 16) && aligned(out, 16) && shape.kv_stride % 8 == 0 && shape.q_stride % 8 == 0 &&
         wgmma_allowed() && device_is_sm90();
}

Status attention_bf16_wgmma(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                            __nv_bfloat16* out, const AttentionShape& shape, const int32_t* q_offsets,
                            const int32_t* q_positions, const int32_t* kv_offsets, const int32_t* tiles,
                            int64_t n_tiles, cudaStream_t stream) {
  if (!attention_bf16_wgmma_supports(shape, q, k, v, out))
    return invalid_argument("attention_bf16_wgmma: needs an sm_90 GPU, head_dim 128, an even number of query heads "
                            "per kv head and 16-byte aligned rows");
  if (n_tiles == 0) return Status();
  const int64_t items = n_tiles * (shape.heads / kHeadsPerBlock);
  if (items > 0x7fffffff) return invalid_argument("attention_bf16_wgmma: too many tiles for one grid");
  DeviceFacts facts;
  EMBEDSERVE_RETURN_IF_ERROR(current_device_facts(&facts));
  // Past 48 KB a block's dynamic shared memory must be allowed explicitly.
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      attention_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
  // One block per multiprocessor (a block takes all of its shared memory), each working through its share.
  const int64_t blocks = std::min<int64_t>(items, facts.multiprocessors);
  attention_wgmma_kernel<<<static_cast<unsigned>(blocks), kThreads, kSmemBytes, stream>>>(
      q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, static_cast<int>(items));
  return cuda_status(cudaGetLastError(), "attention_bf16_wgmma launch");
}

}  // namespace embedserve::cuda
