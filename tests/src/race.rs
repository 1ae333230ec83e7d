//! The single-use race harness: the same item redeemed from two places at once, many rounds,
//! and exactly one winner each round. Codes, refresh tokens, device codes and client assertion
//! `jti`s all go through it.

use std::future::Future;

/// Runs `rounds` rounds; in each, `attempt(round, 0)` and `attempt(round, 1)` run concurrently
/// (both requests in flight together) and must yield exactly one `true`. Fails with the
/// first round that had no winner or two.
pub async fn exactly_one_wins<F, Fut>(rounds: usize, attempt: F) -> anyhow::Result<()>
where
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    for round in 0..rounds {
        let (a, b) = tokio::join!(attempt(round, 0), attempt(round, 1));
        let winners = usize::from(a?) + usize::from(b?);
        anyhow::ensure!(
            winners == 1,
            "round {round}: {winners} of 2 redemptions succeeded, expected exactly 1"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_winners_or_none_fail_the_round() {
        let ok = exactly_one_wins(3, |_, side| async move { Ok(side == 0) }).await;
        assert!(ok.is_ok());
        let both = exactly_one_wins(3, |_, _| async { Ok(true) }).await;
        assert!(both.unwrap_err().to_string().contains("2 of 2"));
        let none =
            exactly_one_wins(3, |round, side| async move { Ok(round != 1 && side == 0) }).await;
        assert!(none.unwrap_err().to_string().contains("round 1: 0 of 2"));
    }
}
