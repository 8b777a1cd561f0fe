//! [`EnvSpec`]: how a trainer makes its environments — a built-in one by name, or a user's
//! factory.

use std::{fmt, sync::Arc};

use super::{Env, make};
use crate::Result;

/// Makes a fresh environment.
pub type EnvFactory = Arc<dyn Fn() -> Result<Box<dyn Env>> + Send + Sync>;

/// Which environment to train or evaluate on: a built-in one by its gymnasium name
/// ([`EnvSpec::named`]) or any [`Env`] from a factory ([`EnvSpec::custom`]).
#[derive(Clone)]
pub struct EnvSpec {
    name: String,
    registered: bool,
    factory: EnvFactory,
}

impl fmt::Debug for EnvSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSpec")
            .field("name", &self.name)
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl EnvSpec {
    /// A built-in environment; an unknown name is an error listing the known ones.
    pub fn named(name: &str) -> Result<Self> {
        make(name)?;
        let owned = name.to_owned();
        Ok(Self {
            name: owned.clone(),
            registered: true,
            factory: Arc::new(move || make(&owned)),
        })
    }

    /// A user environment made by `factory`, labelled `name`.
    pub fn custom(
        name: &str,
        factory: impl Fn() -> Result<Box<dyn Env>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.to_owned(),
            registered: false,
            factory: Arc::new(factory),
        }
    }

    /// A fresh environment.
    pub fn make(&self) -> Result<Box<dyn Env>> {
        (self.factory)()
    }

    /// The environment's label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name [`make`] knows it by, for a built-in environment.
    pub fn registered_name(&self) -> Option<&str> {
        self.registered.then_some(self.name.as_str())
    }

    pub(crate) fn factory(&self) -> &EnvFactory {
        &self.factory
    }
}
