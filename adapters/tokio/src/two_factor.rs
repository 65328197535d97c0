//! Where a two-factor code comes from when a login asks for one.
//!
//! Both clients ask their [`TwoFactor`] source when the server answers a
//! password login with a two-factor challenge (fnOS: an `accessToken`;
//! CFMS: code 202), and again after a refused code, at most
//! [`MAX_ATTEMPTS`] times. The connection keeps being served while the
//! source thinks (a person typing a code): heartbeats and pings go on.
//! A source that gives up (`None`) ends the login with a clear error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// How many codes one login asks for before it gives up.
pub const MAX_ATTEMPTS: u32 = 3;

type Source = dyn Fn(u32) -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync;

/// A source of two-factor codes (TOTP or backup codes).
#[derive(Clone)]
pub struct TwoFactor {
    source: Arc<Source>,
}

impl std::fmt::Debug for TwoFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TwoFactor(..)")
    }
}

impl TwoFactor {
    /// One code known in advance (a flag, an environment variable). It is
    /// offered once: a refused code is not sent again.
    pub fn fixed(code: &str) -> Self {
        let code = Zeroizing::new(code.to_owned());
        TwoFactor::from_fn(move |attempt| {
            let code = (attempt == 1).then(|| code.as_str().to_owned());
            async move { code }
        })
    }

    /// Ask `ask(attempt)` (1-based) for each code, e.g. a prompt on a
    /// terminal; `None` gives up.
    pub fn from_fn<F, Fut>(ask: F) -> Self
    where
        F: Fn(u32) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        TwoFactor {
            source: Arc::new(move |attempt| Box::pin(ask(attempt))),
        }
    }

    /// Start asking in a task of its own; the answer arrives on the receiver.
    pub(crate) fn ask(&self, attempt: u32) -> oneshot::Receiver<Option<String>> {
        let (tx, rx) = oneshot::channel();
        let answer = (self.source)(attempt);
        tokio::spawn(async move {
            let _ = tx.send(answer.await);
        });
        rx
    }
}

/// A login's wait for a code from the configured source: pending forever
/// while none is asked for.
#[derive(Debug, Default)]
pub(crate) struct CodeWait {
    source: Option<TwoFactor>,
    rx: Option<oneshot::Receiver<Option<String>>>,
    /// Codes asked for in this login.
    attempts: u32,
}

impl CodeWait {
    /// Waits for codes from `source` (none: every challenge fails).
    pub fn new(source: Option<TwoFactor>) -> Self {
        CodeWait {
            source,
            ..CodeWait::default()
        }
    }

    /// Ask the source for the next code and return which attempt it is;
    /// `None` without a source or once [`MAX_ATTEMPTS`] were used.
    pub fn ask(&mut self) -> Option<u32> {
        let source = self.source.as_ref()?;
        if self.attempts >= MAX_ATTEMPTS {
            return None;
        }
        self.attempts += 1;
        self.rx = Some(source.ask(self.attempts));
        Some(self.attempts)
    }

    /// Whether a code of this login was already refused (the source was
    /// asked more than once), so a give-up means a wrong code.
    pub fn refused_before(&self) -> bool {
        self.attempts > 1
    }

    /// Forget the login's attempts (it succeeded or ended).
    pub fn reset(&mut self) {
        self.rx = None;
        self.attempts = 0;
    }

    /// The code, once the source answered (`None`: it gave up). Cancel-safe.
    pub async fn next(&mut self) -> Option<String> {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        let code = rx.await.ok().flatten();
        self.rx = None;
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fixed_code_is_offered_once() {
        let mut wait = CodeWait::new(Some(TwoFactor::fixed("123456")));
        assert_eq!(wait.ask(), Some(1));
        assert_eq!(wait.next().await.as_deref(), Some("123456"));
        assert!(!wait.refused_before());
        assert_eq!(wait.ask(), Some(2));
        assert!(wait.refused_before());
        assert_eq!(wait.next().await, None);
    }

    #[tokio::test]
    async fn asking_stops_after_the_last_attempt() {
        let source = TwoFactor::from_fn(|n| async move { Some(format!("code-{n}")) });
        let mut wait = CodeWait::new(Some(source));
        for n in 1..=MAX_ATTEMPTS {
            assert_eq!(wait.ask(), Some(n));
            assert_eq!(wait.next().await, Some(format!("code-{n}")));
        }
        assert_eq!(wait.ask(), None);
        wait.reset();
        assert_eq!(wait.ask(), Some(1));
    }

    #[test]
    fn without_a_source_nothing_is_asked() {
        assert_eq!(CodeWait::new(None).ask(), None);
    }

    #[tokio::test]
    async fn nothing_asked_means_no_answer() {
        let mut wait = CodeWait::default();
        let idle = tokio::time::timeout(std::time::Duration::from_millis(20), wait.next()).await;
        assert!(idle.is_err());
    }
}
