//! Deterministic draws: the same seed gives the same numbers on every run and machine. The
//! generators (`tally gen`), the bench's workloads and the randomized tests all draw from here, so
//! a failing case can be replayed and a benchmark's workload is the same every time.

/// splitmix64: the same seed gives the same numbers on every run and machine, so a failing
/// randomized case can be replayed, and a benchmark's workload is the same every time.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Key ranks `1..=keys` drawn from a Zipf distribution of exponent `s` (0: uniform), by inverse
/// transform over the cumulative weights: a skewed workload, the same on every run.
#[derive(Debug, Clone)]
pub struct ZipfKeys {
    cumulative: Vec<f64>,
}

impl ZipfKeys {
    pub fn new(keys: usize, s: f64) -> Self {
        let weights: Vec<f64> = (1..=keys.max(1)).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        ZipfKeys { cumulative }
    }

    pub fn rank(&self, rng: &mut SeededRng) -> u64 {
        let u = rng.unit();
        let last = self.cumulative.len() - 1;
        (self.cumulative.partition_point(|c| *c < u).min(last) + 1) as u64
    }
}
