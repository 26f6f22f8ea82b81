//! Turning a spec's services into `summoner-proc` executors.
//!
//! Shared by `summoner up` and (later) the CI pipeline runner, so that a service behaves the
//! same on a laptop and on the CI server. Templates are rendered here, at launch time,
//! because the values they name (resource variables in particular) only exist once the job
//! runs. Nothing else is parsed here: the spec already holds the engine's own values
//! (signals, compiled regexes, durations), so rendering a template is the only way a
//! launch can fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use summoner_proc::{Executor, HttpCheck, Ready};

use crate::spec::{Command, ReadySpec, ServiceSpec, Spec, Template};

/// Why a service could not be turned into an executor: a `${VAR}` named a variable that is
/// not set and has no default.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The service's templates could not be rendered.
    #[error("service \"{service}\"")]
    Render {
        /// The service's name.
        service: String,
        /// Which variable was missing.
        #[source]
        source: crate::spec::RenderError,
    },
}

/// The variables a job's processes see: the inherited environment, then the spec's `env:`
/// (each value may use the ones defined before it), then any extra variables (resources).
#[derive(Debug, Clone, Default)]
pub struct JobEnv {
    vars: BTreeMap<String, String>,
    /// Only the variables summoner adds, so executors can pass them explicitly while
    /// inheriting the rest.
    added: BTreeMap<String, String>,
}

impl JobEnv {
    /// Starts from the current process's environment.
    pub fn inherit() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Starts from the given variables (tests use this to stay independent of the
    /// environment they run in).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        JobEnv {
            vars: vars.into_iter().collect(),
            added: BTreeMap::new(),
        }
    }

    /// Sets a variable for every process of the job.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        self.vars.insert(key.clone(), value.clone());
        self.added.insert(key, value);
    }

    /// Renders and adds a spec's `env:` entries in order.
    pub fn extend_rendered(
        &mut self,
        entries: &[(String, Template)],
    ) -> Result<(), crate::spec::RenderError> {
        for (key, template) in entries {
            let value = self.render(template)?;
            self.set(key.clone(), value);
        }
        Ok(())
    }

    /// Renders one template against these variables.
    pub fn render(&self, template: &Template) -> Result<String, crate::spec::RenderError> {
        template.render(|name| self.vars.get(name).cloned())
    }

    /// Looks a variable up.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The variables summoner added on top of the inherited environment.
    pub fn added(&self) -> impl Iterator<Item = (&str, &str)> {
        self.added.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Builds the job environment for a spec: inherited variables, then the spec's `env:`.
pub fn job_env(spec: &Spec, base: JobEnv) -> Result<JobEnv, crate::spec::RenderError> {
    let mut env = base;
    env.extend_rendered(&spec.env)?;
    Ok(env)
}

/// Builds the executor for one service. Relative paths (`cwd`, `unix`, `file`) are taken
/// from `root`, the directory of the spec file, so a file behaves the same whatever
/// directory `summoner` is started from.
pub fn executor(service: &ServiceSpec, job: &JobEnv, root: &Path) -> Result<Executor, LaunchError> {
    let name = service.name.clone();
    let render_err = |source| LaunchError::Render {
        service: name.clone(),
        source,
    };

    let mut env = job.clone();
    env.extend_rendered(&service.env).map_err(render_err)?;
    let render = |t: &Template| env.render(t).map_err(render_err);

    let mut exec = match &service.run {
        Command::Shell(t) => Executor::shell(render(t)?),
        Command::Argv(argv) => {
            let argv = argv.iter().map(&render).collect::<Result<Vec<_>, _>>()?;
            Executor::new(argv)
        }
    };
    exec = exec.name(&service.name);
    for (k, v) in env.added() {
        exec = exec.env(k, v);
    }
    let cwd = match &service.cwd {
        Some(t) => root.join(render(t)?),
        None => root.to_path_buf(),
    };
    exec = exec.cwd(&cwd);

    let path = |t: &Template| -> Result<PathBuf, LaunchError> { Ok(cwd.join(render(t)?)) };
    let ready = match &service.ready {
        ReadySpec::None => Ready::None,
        ReadySpec::Output(regex) => Ready::output_regex(regex.clone()),
        ReadySpec::Tcp(addr) => Ready::tcp(render(addr)?),
        ReadySpec::Http {
            url,
            status,
            method,
            body,
        } => {
            let mut check = HttpCheck::new(render(url)?);
            if let Some(method) = method {
                check = check.method(method);
            }
            if let Some(status) = status {
                check = check.status_pattern(status.clone());
            }
            if let Some(body) = body {
                check = check.body_contains(body);
            }
            Ready::Http(check)
        }
        ReadySpec::Unix(p) => Ready::unix(path(p)?),
        ReadySpec::File(p) => Ready::file(path(p)?),
        ReadySpec::Cmd(Command::Shell(t)) => Ready::cmd_shell(render(t)?),
        ReadySpec::Cmd(Command::Argv(argv)) => {
            Ready::cmd(argv.iter().map(&render).collect::<Result<Vec<_>, _>>()?)
        }
        ReadySpec::Exit => Ready::exit(),
    };
    exec = exec.ready(ready);

    if let Some(t) = service.timeout {
        exec = exec.timeout(t);
    }
    if let Some(signal) = service.stop_signal {
        exec = exec.stop_signal(signal);
    }
    if let Some(g) = service.stop_grace {
        exec = exec.grace(g);
    }
    if let Some(codes) = &service.exit_codes {
        exec = exec.exit_codes(codes.iter().copied());
    }
    Ok(exec)
}
