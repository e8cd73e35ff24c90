//! Which Stripe a deployment takes money through, and the rule that a database stays with the
//! mode it was first served in.
//!
//! Why: a deployment that lost its Stripe settings used to come up on the built-in simulator
//! against whatever database it was given, so a production database could have credited real
//! contracts for the 4242 test card. A test-mode key on a live database is the same trap from
//! the other side (test payments crediting live contracts). So the mode is chosen, never fallen
//! into, and the database refuses a start in another mode unless the operator says, once and on
//! purpose, that it moves.
use super::events::StripeMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentMode {
    /// The built-in Stripe simulator: test cards only, no money moves.
    Simulator,
    /// Stripe with a test-mode key (sk_test_).
    Test,
    /// Stripe with a live key (sk_live_): real money.
    Live,
}

impl DeploymentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simulator => "simulator",
            Self::Test => "test",
            Self::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "simulator" => Ok(Self::Simulator),
            "test" => Ok(Self::Test),
            "live" => Ok(Self::Live),
            other => Err(format!("`{other}` is not a deployment mode (simulator, test or live)")),
        }
    }

    /// The Stripe mode events must carry to count: the simulator speaks test mode.
    pub fn stripe_mode(self) -> StripeMode {
        match self {
            Self::Live => StripeMode::Live,
            Self::Simulator | Self::Test => StripeMode::Test,
        }
    }

    /// In words, for start-up lines and refusals.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Simulator => "the built-in Stripe simulator (no money moves)",
            Self::Test => "Stripe in test mode",
            Self::Live => "Stripe in live mode (real money)",
        }
    }
}

/// Where a deployment in `mode` may listen. The simulator's publishable key and its control
/// routes are public by design (the README prints them), so anyone who reaches a simulator-mode
/// server can "pay" with 4242 and mint credits: it serves on a loopback address unless the
/// operator says, explicitly, that a wider audience is meant (a shared demo behind its own
/// access control).
pub fn check_listen_address(
    mode: DeploymentMode,
    addr: std::net::IpAddr,
    simulator_public: bool,
) -> Result<(), String> {
    if mode == DeploymentMode::Simulator && !addr.is_loopback() && !simulator_public {
        return Err(format!(
            "simulator mode serves on a loopback address only (BIND_ADDR 127.0.0.1:PORT): anyone who reaches \
             {addr} could mint revisions with the simulator's public test key; set SIMULATOR_PUBLIC=true if that \
             is really meant"
        ));
    }
    Ok(())
}

/// What starting in a mode does to the database's record of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeStart {
    /// The database's first start: record the mode.
    First,
    /// The mode it was last served in.
    Same,
    /// A deliberate move (`--switch-mode`): record the new mode after `from`.
    Switch { from: DeploymentMode },
}

/// The rule: a database is served in the mode it was last recorded in; another mode is refused
/// unless `switch` says the move is deliberate.
pub fn start_in(recorded: Option<DeploymentMode>, starting: DeploymentMode, switch: bool) -> Result<ModeStart, String> {
    match recorded {
        None => Ok(ModeStart::First),
        Some(r) if r == starting => Ok(ModeStart::Same),
        Some(from) if switch => Ok(ModeStart::Switch { from }),
        Some(r) => Err(format!(
            "this database was served with {}, and this start would use {}; refusing so that {} payments \
             never credit its contracts. For a deliberate move, start once with --switch-mode (SWITCH_MODE=true)",
            r.describe(),
            starting.describe(),
            if starting == DeploymentMode::Live { "its test" } else { "test" },
        )),
    }
}

/// The one line start-up stops with when no mode was chosen.
pub const NO_MODE_CHOSEN: &str = "no Stripe configured: set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and \
     STRIPE_WEBHOOK_SECRET to use Stripe, or --stripe-simulator (STRIPE_SIMULATOR=true) to run on the built-in \
     simulator, where no money moves";

#[cfg(test)]
mod tests {
    use super::DeploymentMode::*;
    use super::*;

    #[test]
    fn a_database_keeps_its_first_mode_unless_the_move_is_deliberate() {
        assert_eq!(start_in(None, Live, false), Ok(ModeStart::First));
        assert_eq!(start_in(Some(Live), Live, false), Ok(ModeStart::Same));
        let e = start_in(Some(Live), Simulator, false).unwrap_err();
        assert!(e.contains("served with Stripe in live mode") && e.contains("built-in Stripe simulator"), "{e}");
        assert!(e.contains("--switch-mode"), "{e}");
        assert!(start_in(Some(Test), Live, false).is_err(), "test to live is a deliberate move too");
        assert_eq!(start_in(Some(Test), Live, true), Ok(ModeStart::Switch { from: Test }));
        assert_eq!(start_in(Some(Simulator), Simulator, true), Ok(ModeStart::Same), "no move: nothing to record");
    }

    #[test]
    fn modes_read_back_and_map_to_stripe() {
        for m in [Simulator, Test, Live] {
            assert_eq!(DeploymentMode::parse(m.as_str()), Ok(m));
        }
        assert!(DeploymentMode::parse("Live").is_err());
        assert_eq!(Simulator.stripe_mode(), StripeMode::Test);
        assert_eq!(Live.stripe_mode(), StripeMode::Live);
    }
    #[test]
    fn the_simulator_listens_on_loopback_unless_told_otherwise() {
        use std::net::IpAddr;
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lan: IpAddr = "192.0.2.7".parse().unwrap();
        for local in ["127.0.0.1", "127.0.0.2", "::1"] {
            assert_eq!(check_listen_address(DeploymentMode::Simulator, local.parse().unwrap(), false), Ok(()));
        }
        for wide in [any, lan, "::".parse().unwrap()] {
            let e = check_listen_address(DeploymentMode::Simulator, wide, false).unwrap_err();
            assert!(e.contains("SIMULATOR_PUBLIC"), "{e}");
            assert_eq!(check_listen_address(DeploymentMode::Simulator, wide, true), Ok(()));
        }
        // Real Stripe modes listen wherever they are told: their credits need a real payment.
        assert_eq!(check_listen_address(DeploymentMode::Live, any, false), Ok(()));
        assert_eq!(check_listen_address(DeploymentMode::Test, lan, false), Ok(()));
    }
}
