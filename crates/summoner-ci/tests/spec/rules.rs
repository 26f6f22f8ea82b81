//! One test per rule of the format, through `Spec::parse`.

use std::collections::BTreeMap;
use std::time::Duration;

use summoner_ci::spec::{
    ClosureError, Command, ReadySpec, ResourceReq, Spec, SpecError, SpecErrors, Template, When,
};
use summoner_proc::regex::Regex;
use summoner_proc::{Signal, StatusPattern};

const FILE: &str = ".summoner.yml";

fn parse(text: &str) -> Spec {
    Spec::parse(FILE, text).unwrap_or_else(|e| panic!("should parse:\n{e}"))
}

/// The error lines, as a user reads them.
fn errors(text: &str) -> Vec<String> {
    match Spec::parse(FILE, text) {
        Ok(spec) => panic!("should fail, parsed to {spec:#?}"),
        Err(errors) => {
            super::files::assert_positions_inside(text, &errors);
            errors.to_string().lines().map(str::to_owned).collect()
        }
    }
}

/// The only error, as a user reads it.
fn error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

fn t(raw: &str) -> Template {
    Template::parse(raw).unwrap()
}

fn no_env(_: &str) -> Option<String> {
    None
}

// ---- accepted forms ------------------------------------------------------------------------

#[test]
fn empty_files_are_empty_specs() {
    for text in ["", "{}", "# nothing\n", "---\n", "\n"] {
        assert_eq!(parse(text), Spec::default(), "{text:?}");
    }
}

#[test]
fn empty_sections_are_empty() {
    let spec = parse("env:\nresources:\nservices:\nsteps:\nwhen:\n");
    assert_eq!(spec, Spec::default());
    let spec = parse("env: {}\nresources: []\nservices: {}\nsteps: []\nwhen: {}\n");
    assert_eq!(spec, Spec::default());
}

#[test]
fn the_design_example_parses_to_what_it_says() {
    let text = include_str!("../specs/good/design_md.yml");
    let spec = parse(text);
    assert_eq!(spec.env, [("RUST_LOG".to_owned(), t("info"))]);
    assert_eq!(
        spec.resources,
        [ResourceReq {
            pool: "ports".into(),
            count: 2,
            labels: BTreeMap::from([("host".into(), "local".into())]),
        }]
    );
    let names: Vec<&str> = spec.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    let db = spec.service("db").unwrap();
    assert_eq!(
        db.run,
        Command::Shell(t("redis-server --port ${SUMMONER_PORTS_0_PORT}"))
    );
    assert_eq!(
        db.ready,
        ReadySpec::Tcp(t("127.0.0.1:${SUMMONER_PORTS_0_PORT}"))
    );
    assert_eq!(db.timeout, Some(Duration::from_secs(30)));
    let web = spec.service("web").unwrap();
    assert_eq!(
        web.ready,
        ReadySpec::Http {
            url: t("http://127.0.0.1:${SUMMONER_PORTS_1_PORT}/"),
            status: Some(StatusPattern::new("2..").unwrap()),
            method: None,
            body: None,
        }
    );
    assert_eq!(web.depends_on, ["db"]);
    assert_eq!(web.timeout, None);
    assert_eq!(spec.steps.len(), 1);
    let step = &spec.steps[0];
    assert_eq!(step.name, "test");
    assert_eq!(
        step.run,
        Command::Shell(t("pytest --junitxml=report.xml\n"))
    );
    assert_eq!(step.timeout, Some(Duration::from_secs(600)));
    assert_eq!(step.reports, ["report.xml"]);
    assert_eq!(
        spec.when,
        When {
            events: vec!["push".into(), "pull_request".into()],
            branches: vec!["main".into(), "release/*".into()],
        }
    );
    assert!(spec.service("nope").is_none());
}

#[test]
fn services_keep_file_order() {
    let spec = parse("services:\n  zeta: {run: z}\n  alpha: {run: a}\n  mid: {run: m}\n");
    let names: Vec<&str> = spec.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
}

#[test]
fn env_values_may_be_numbers_and_booleans_kept_as_written() {
    let spec = parse("env:\n  A: 8080\n  B: 1.50\n  C: true\n  D: yes\n  E: '007'\n  F: \"\"\n");
    let env: Vec<(&str, &str)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.raw()))
        .collect();
    assert_eq!(
        env,
        [
            ("A", "8080"),
            ("B", "1.50"),
            ("C", "true"),
            ("D", "yes"),
            ("E", "007"),
            ("F", "")
        ]
    );
}

#[test]
fn resources_default_to_one_and_no_labels() {
    let spec = parse("resources:\n  - pool: boards\n");
    assert_eq!(
        spec.resources,
        [ResourceReq {
            pool: "boards".into(),
            count: 1,
            labels: BTreeMap::new(),
        }]
    );
}

#[test]
fn run_is_a_shell_string_or_an_argv_list() {
    let spec = parse("services:\n  a: {run: echo $HOME}\n  b: {run: [sleep, 10, true]}\n");
    assert_eq!(spec.services[0].run, Command::Shell(t("echo $HOME")));
    assert_eq!(
        spec.services[1].run,
        Command::Argv(vec![t("sleep"), t("10"), t("true")])
    );
    assert_eq!(spec.services[1].run.to_string(), "sleep 10 true");
}

#[test]
fn every_readiness_kind() {
    let spec = parse(include_str!("../specs/good/ready_kinds.yml"));
    let ready = |name: &str| spec.service(name).unwrap().ready.clone();
    assert_eq!(ready("none-absent"), ReadySpec::None);
    assert_eq!(ready("none-word"), ReadySpec::None);
    assert_eq!(ready("none-null"), ReadySpec::None);
    assert_eq!(
        ready("output"),
        ReadySpec::Output(Regex::new(r"listening on .*:\d+$").unwrap())
    );
    assert_eq!(ready("tcp"), ReadySpec::Tcp(t("[::1]:6379")));
    assert_eq!(
        ready("http"),
        ReadySpec::Http {
            url: t("https://localhost:8443/"),
            status: Some(StatusPattern::new("200").unwrap()),
            method: Some("POST".into()),
            body: Some("healthy".into()),
        }
    );
    assert_eq!(ready("unix"), ReadySpec::Unix(t("${TMPDIR:-/tmp}/d.sock")));
    assert_eq!(ready("file"), ReadySpec::File(t("run/d.pid")));
    assert_eq!(
        ready("cmd-shell"),
        ReadySpec::Cmd(Command::Shell(t("pg_isready -p 5432")))
    );
    assert_eq!(
        ready("cmd-argv"),
        ReadySpec::Cmd(Command::Argv(vec![t("pg_isready"), t("-p"), t("5432")]))
    );
    assert_eq!(ready("exit-word"), ReadySpec::Exit);
    assert_eq!(ready("exit-map"), ReadySpec::Exit);
}

#[test]
fn service_options() {
    let spec = parse(include_str!("../specs/good/brief_full.yml"));
    let db = spec.service("db").unwrap();
    assert_eq!(db.env, [("A".to_owned(), t("b"))]);
    assert_eq!(db.cwd, Some(t("some/dir")));
    assert_eq!(db.stop_signal, Some(Signal::SIGINT));
    assert_eq!(db.stop_grace, Some(Duration::from_secs(5)));
    assert_eq!(db.exit_codes, Some(vec![0, 1]));
    assert_eq!(db.depends_on, ["other"]);
    let other = spec.service("other").unwrap();
    assert_eq!(other.stop_signal, None);
    assert_eq!(other.stop_grace, None);
    assert_eq!(other.exit_codes, None);
    assert_eq!(spec.steps[0].cwd, Some(t(".")));
    assert!(spec.steps[0].env.is_empty());
}

#[test]
fn signals_are_normalised() {
    for (written, signal) in [
        ("TERM", Signal::SIGTERM),
        ("sigint", Signal::SIGINT),
        ("HUP", Signal::SIGHUP),
        ("SIGUSR1", Signal::SIGUSR1),
    ] {
        let spec = parse(&format!(
            "services:\n  a:\n    run: x\n    stop_signal: {written}\n"
        ));
        assert_eq!(spec.services[0].stop_signal, Some(signal));
    }
}

#[test]
fn durations() {
    let spec = parse("services:\n  a:\n    run: x\n    timeout: 1m30s\n    stop_grace: 0s\n");
    assert_eq!(spec.services[0].timeout, Some(Duration::from_secs(90)));
    assert_eq!(spec.services[0].stop_grace, Some(Duration::ZERO));
    let spec = parse("steps:\n  - run: x\n    timeout: 500ms\n");
    assert_eq!(spec.steps[0].timeout, Some(Duration::from_millis(500)));
}

#[test]
fn single_strings_stand_for_one_item_lists() {
    let spec = parse(
        "services:\n  db: {run: x}\n  web: {run: y, depends_on: db, exit_codes: 3}\n\
         steps:\n  - {run: z, reports: out/*.xml}\nwhen: {event: push, branch: main}\n",
    );
    assert_eq!(spec.services[1].depends_on, ["db"]);
    assert_eq!(spec.services[1].exit_codes, Some(vec![3]));
    assert_eq!(spec.steps[0].reports, ["out/*.xml"]);
    assert_eq!(spec.when.events, ["push"]);
    assert_eq!(spec.when.branches, ["main"]);
}

#[test]
fn repeated_dependencies_are_merged() {
    let spec = parse("services:\n  db: {run: x}\n  web: {run: y, depends_on: [db, db]}\n");
    assert_eq!(spec.services[1].depends_on, ["db"]);
}

#[test]
fn steps_without_a_name_are_numbered() {
    let spec = parse("steps:\n  - run: a\n  - name: b\n    run: b\n  - run: c\n");
    let names: Vec<&str> = spec.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["step 1", "b", "step 3"]);
}

#[test]
fn anchors_merge_keys_and_extension_fields() {
    let spec = parse(include_str!("../specs/good/anchors_and_values.yml"));
    let api = spec.service("api").unwrap();
    assert_eq!(api.timeout, Some(Duration::from_secs(20)));
    assert_eq!(api.stop_grace, Some(Duration::from_secs(2)));
    assert_eq!(api.env, [("LANG".to_owned(), t("C.UTF-8"))]);
    let worker = spec.service("worker").unwrap();
    assert_eq!(worker.timeout, Some(Duration::from_secs(300)));
    assert_eq!(worker.env, api.env);
    let env: Vec<&str> = spec.env.iter().map(|(_, v)| v.raw()).collect();
    assert_eq!(env, ["8080", "1.50", "true", "yes", "0123", "5$$"]);
    assert_eq!(spec.env[5].1.render(no_env).unwrap(), "5$");
}

#[test]
fn templates_render_at_run_time() {
    let spec = parse(include_str!("../specs/good/design_md.yml"));
    let lookup = |name: &str| (name == "SUMMONER_PORTS_0_PORT").then(|| "20001".to_owned());
    let Command::Shell(run) = &spec.services[0].run else {
        panic!()
    };
    assert_eq!(run.render(lookup).unwrap(), "redis-server --port 20001");
    let err = spec.services[1].run.to_string();
    assert_eq!(err, "python3 -m http.server ${SUMMONER_PORTS_1_PORT}");
    let Command::Shell(run) = &spec.services[1].run else {
        panic!()
    };
    assert_eq!(
        run.render(lookup).unwrap_err().to_string(),
        "variable \"SUMMONER_PORTS_1_PORT\" is not set \
         (write ${SUMMONER_PORTS_1_PORT:-default} to give it a default)"
    );
}

#[test]
fn when_matches_events_and_branch_globs() {
    let spec = parse(include_str!("../specs/good/design_md.yml"));
    assert!(spec.when.matches("push", Some("main")));
    assert!(spec.when.matches("pull_request", Some("release/1.2")));
    assert!(!spec.when.matches("manual", Some("main")));
    assert!(!spec.when.matches("push", Some("feature/x")));
}

#[test]
fn closure_lists_dependencies_first() {
    let spec = parse(include_str!("../specs/good/services_only.yml"));
    let order = spec.closure(&["app".to_owned()]).unwrap();
    let names: Vec<&str> = order.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["postgres", "migrate", "app"]);
    let order = spec.closure(&["postgres".to_owned()]).unwrap();
    assert_eq!(order.len(), 1);
    assert_eq!(
        spec.closure(&["ap".to_owned()]).unwrap_err(),
        ClosureError::UnknownService {
            name: "ap".into(),
            suggestion: Some("app".into()),
            known: vec!["postgres".into(), "migrate".into(), "app".into()],
        }
    );
}

// ---- errors --------------------------------------------------------------------------------

#[test]
fn the_briefs_example_messages() {
    let text = "services:\n  db:\n    run: redis-server\n  web:\n    run: ./web\n    ready: none\n    depend_on: [db]\n";
    assert_eq!(
        error(text),
        ".summoner.yml:7:5: unknown key \"depend_on\" in service \"web\"; did you mean \"depends_on\"?"
    );
    let text = "services:\n  db:\n    timeout: 30 seconds\n    run: redis-server\n";
    assert_eq!(
        error(text),
        ".summoner.yml:3:14: expected a duration like \"30s\" or \"500ms\", found \"30 seconds\""
    );
}

#[test]
fn a_bare_integer_duration_asks_for_a_unit() {
    let text = "services:\n  db:\n    run: x\n    timeout: 30\n";
    assert_eq!(
        error(text),
        ".summoner.yml:4:14: expected a duration like \"30s\" or \"500ms\", found 30; \
         add a unit, e.g. \"30s\""
    );
}

#[test]
fn all_errors_are_collected_and_sorted() {
    // The cycle is found last, after the file has been walked, but is listed by position.
    let text = "services:\n  a: {run: x, depends_on: [b]}\n  b: {run: x, depends_on: [a]}\n\
                steps:\n  - run: ''\n    timeout: 5\nwhen: {event: pull}\n";
    let errors = errors(text);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with(".summoner.yml:3:"), "{errors:#?}");
    assert!(errors[0].contains("dependency cycle: a -> b -> a"));
    assert!(errors[1].contains("empty \"run\" in step 1"));
    assert!(errors[2].contains("add a unit"));
    assert!(errors[3].contains("unknown event \"pull\""));
}

#[test]
fn unknown_keys_everywhere_with_suggestions() {
    assert_eq!(
        error("sevices: {}\n"),
        ".summoner.yml:1:1: unknown key \"sevices\" at the top level; did you mean \"services\"?"
    );
    assert!(
        error("resources:\n  - pool: p\n    label: {}\n")
            .ends_with("unknown key \"label\" in resource 1; did you mean \"labels\"?")
    );
    assert!(
        error("steps:\n  - run: x\n    timout: 1s\n")
            .ends_with("unknown key \"timout\" in step 1; did you mean \"timeout\"?")
    );
    assert!(
        error("when:\n  branches: [main]\n")
            .ends_with("unknown key \"branches\" in \"when\"; did you mean \"branch\"?")
    );
    assert!(
        error("services:\n  a:\n    run: x\n    ready: {tpc: \"h:1\"}\n")
            .contains("unknown key \"tpc\" in \"ready\" of service \"a\"; did you mean \"tcp\"?")
    );
    assert!(
        error("services:\n  a:\n    run: x\n    image: redis\n")
            .ends_with("expected one of run, ready, timeout, env, cwd, stop_signal, stop_grace, exit_codes, depends_on")
    );
}

#[test]
fn extension_fields_are_only_allowed_at_the_top_level() {
    parse("x-anything: [1, 2]\n");
    assert!(
        error("services:\n  a:\n    run: x\n    x-note: hi\n").contains("unknown key \"x-note\"")
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    assert_eq!(
        error("resources:\n  - pool: p\n    count: two\n"),
        ".summoner.yml:3:12: expected a count (an integer of at least 1), found \"two\""
    );
    assert_eq!(
        error("services:\n  a:\n    run: {x: 1}\n"),
        ".summoner.yml:3:10: expected a command: a string (run with sh -c) or a list of arguments, found a mapping"
    );
    assert_eq!(
        error("services: [a]\n"),
        ".summoner.yml:1:11: expected a mapping of service names to services (not a list), found a list"
    );
}

#[test]
fn unknown_dependencies_suggest_the_closest_service() {
    let text = "services:\n  db: {run: x}\n  web: {run: y, depends_on: [dbb]}\n";
    assert_eq!(
        error(text),
        ".summoner.yml:3:30: unknown service \"dbb\" in \"depends_on\" of service \"web\"; did you mean \"db\"?"
    );
}

#[test]
fn dependency_cycles_are_named() {
    let text = "services:\n  a: {run: x, depends_on: [b]}\n  b: {run: x, depends_on: [c]}\n  c: {run: x, depends_on: [a]}\n";
    assert_eq!(
        error(text),
        ".summoner.yml:4:28: dependency cycle: a -> b -> c -> a"
    );
    let text = "services:\n  a: {run: x, depends_on: [a]}\n";
    assert_eq!(error(text), ".summoner.yml:2:28: dependency cycle: a -> a");
}

#[test]
fn a_broken_service_still_counts_for_dependencies() {
    // "db" has an error of its own; "web" depending on it is not reported as well.
    let text = "services:\n  db: {run: x, timeout: 3}\n  web: {run: y, depends_on: [db]}\n";
    assert_eq!(errors(text).len(), 1);
}

#[test]
fn empty_run_is_an_error() {
    assert!(
        error("services:\n  a: {run: ''}\n")
            .ends_with("empty \"run\" in service \"a\": expected a command")
    );
    assert!(error("steps:\n  - run: []\n").contains("empty \"run\" list in step 1"));
    assert!(error("steps:\n  - run: \"  \\n\"\n").contains("empty \"run\" in step 1"));
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        error("services:\n  a:\n    timeout: 1s\n"),
        ".summoner.yml:3:5: missing required key \"run\" in service \"a\""
    );
    assert_eq!(
        error("steps:\n  - name: build\n"),
        ".summoner.yml:2:5: missing required key \"run\" in step \"build\""
    );
    assert_eq!(
        error("resources:\n  - count: 1\n"),
        ".summoner.yml:2:5: missing required key \"pool\" in resource 1"
    );
}

#[test]
fn nested_mappings_name_their_owner() {
    assert_eq!(
        error("services:\n  db:\n    run: x\n    env: {A: 1, A: 2}\n"),
        ".summoner.yml:4:17: duplicate key \"A\" in \"env\" of service \"db\" (first defined at line 4, column 11)"
    );
    assert!(
        error("steps:\n  - name: t\n    run: x\n    env: {A: 1, A: 2}\n")
            .contains("in \"env\" of step \"t\"")
    );
    assert!(
        error("resources:\n  - pool: p\n    labels: {a: 1, a: 2}\n")
            .contains("in \"labels\" of resource 1")
    );
}

#[test]
fn count_must_be_at_least_one() {
    assert_eq!(
        error("resources:\n  - pool: p\n    count: 0\n"),
        ".summoner.yml:3:12: expected a count of at least 1, found 0"
    );
}

#[test]
fn duplicate_keys_are_rejected_not_last_wins() {
    assert_eq!(
        error("services:\n  a: {run: x}\n  a: {run: y}\n"),
        ".summoner.yml:3:3: duplicate key \"a\" in \"services\" (first defined at line 2, column 3)"
    );
    assert_eq!(
        error("env: {A: 1, A: 2}\n"),
        ".summoner.yml:1:13: duplicate key \"A\" in \"env\" (first defined at line 1, column 7)"
    );
    assert_eq!(
        error("steps:\n  - run: a\n    run: b\n"),
        ".summoner.yml:3:5: duplicate key \"run\" in step 1 (first defined at line 2, column 5)"
    );
}

#[test]
fn bad_regexes() {
    assert_eq!(
        error("services:\n  a:\n    run: x\n    ready: {output: 'ready (now'}\n"),
        ".summoner.yml:4:21: invalid regex \"ready (now\": unclosed group"
    );
}

#[test]
fn bad_signals_and_events() {
    assert!(
        error("services:\n  a: {run: x, stop_signal: SIGSTOP}\n")
            .contains("expected a signal name (SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGKILL, SIGUSR1, SIGUSR2), found \"SIGSTOP\"")
    );
    // A number is refused however it is written, with the name it stands for.
    assert!(
        error("services:\n  a: {run: x, stop_signal: \"2\"}\n")
            .ends_with("found \"2\"; write its name, \"SIGINT\"")
    );
    assert_eq!(
        error("when:\n  event: pushh\n"),
        ".summoner.yml:2:10: unknown event \"pushh\": expected push, pull_request or manual; did you mean \"push\"?"
    );
}

#[test]
fn two_readiness_kinds_name_both() {
    assert!(
        error("services:\n  a:\n    run: x\n    ready: {tcp: 'h:1', file: f}\n")
            .ends_with("two readiness kinds, \"tcp\" and \"file\", in \"ready\" of service \"a\": expected exactly one")
    );
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let line = error("services:\n  a: {run: x\n");
    assert!(line.starts_with(".summoner.yml:"), "{line}");
    assert!(line.contains("invalid YAML"), "{line}");
}

#[test]
fn yaml_indentation_errors_point_at_the_mistake_not_where_the_parser_stopped() {
    // The unindented `timeout:` is a valid new service to the parser, which only stops at
    // the line after it; the error names the line with the mistake.
    let text = "services:\n  web:\n    run: x\n  timeout: 30s\n    depends_on: [db]\n";
    let line = error(text);
    assert!(
        line.starts_with(
            ".summoner.yml:4:3: invalid YAML: \"timeout:\" is indented 2 spaces, but the line \
             after it goes on at 4 like the keys of service \"web\" above it"
        ),
        "{line}"
    );
    // The parser's own words stay, with their position, for a reader who disagrees.
    assert!(line.ends_with("(the parser stopped at line 5, column 15: mapping values are not allowed in this context)"), "{line}");
    assert_eq!(
        error("services:\n  web:\n    run: x\n   timeout: 30s\n"),
        ".summoner.yml:4:4: invalid YAML: \"timeout:\" is indented 3 spaces, but the keys of \
         service \"web\" are indented 4 (and the keys of \"services\" 2)"
    );
}

#[test]
fn template_errors_point_at_the_dollar() {
    assert_eq!(
        error("services:\n  a:\n    run: echo ${A} ${B\n"),
        ".summoner.yml:3:20: unclosed \"${\": expected \"}\" (write \"$$\" for a literal \"$\")"
    );
    // Inside a block scalar, on its second line.
    let text = "steps:\n  - run: |\n      echo ${A}\n      echo ${}\n";
    assert!(error(text).starts_with(".summoner.yml:4:12: empty variable name"));
    // In a double-quoted string with an escape before it.
    let text = "env:\n  A: \"\\t${1}\"\n";
    assert!(error(text).starts_with(".summoner.yml:2:9: invalid variable name \"1\""));
    // In cwd and in a readiness target.
    assert!(error("steps:\n  - {run: x, cwd: '${'}\n").starts_with(".summoner.yml:2:20:"));
    assert!(
        error("services:\n  a: {run: x, ready: {file: '${-}'}}\n")
            .starts_with(".summoner.yml:2:30:")
    );
}

#[test]
fn a_null_env_value_is_an_error() {
    assert_eq!(
        error("env:\n  A:\n"),
        ".summoner.yml:2:3: expected a value for \"A\", found nothing (write \"\" for an empty value)"
    );
}

#[test]
fn the_top_level_must_be_a_mapping() {
    assert!(
        error("- a\n- b\n").contains(
            "expected a mapping with env, resources, services, steps or when, found a list"
        )
    );
    assert!(error("hello\n").contains("found \"hello\""));
}

#[test]
fn spec_errors_display_one_per_line_sorted() {
    let errors = SpecErrors(vec![
        SpecError {
            file: "f".into(),
            line: 9,
            column: 1,
            message: "later".into(),
        },
        SpecError {
            file: "f".into(),
            line: 2,
            column: 5,
            message: "earlier".into(),
        },
    ]);
    assert_eq!(errors.to_string(), "f:2:5: earlier\nf:9:1: later");
}

// ---- loading -------------------------------------------------------------------------------

#[test]
fn load_reports_read_errors_as_spec_errors() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-dir/.summoner.yml");
    let errors = Spec::load(&path).unwrap_err();
    assert_eq!(errors.len(), 1);
    let error = &errors.0[0];
    assert_eq!((error.line, error.column), (0, 0));
    assert!(
        error.message.starts_with("cannot read the file: "),
        "{error}"
    );
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}: cannot read", path.display()))
    );
}

#[test]
fn load_reports_invalid_utf8_with_its_position() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("invalid-utf8.yml");
    std::fs::write(&path, b"env:\n  A: caf\xe9\n").unwrap();
    let errors = Spec::load(&path).unwrap_err();
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:2:9: invalid UTF-8: a spec must be UTF-8 text",
            path.display()
        )
    );
}

#[test]
fn load_parses_a_file() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("load.summoner.yml");
    std::fs::write(&path, "services:\n  a: {run: x, timeout: 3}\n").unwrap();
    let errors = Spec::load(&path).unwrap_err();
    assert_eq!(errors.0[0].file, path.display().to_string());
    assert_eq!((errors.0[0].line, errors.0[0].column), (2, 24));
}

/// Found by the mutation proptest: a multi-byte character where the scheme would end
/// panicked the URL check (it sliced the text by bytes).
#[test]
fn a_url_with_a_multi_byte_character_in_its_scheme_is_an_error_not_a_panic() {
    let message =
        error("services:\n  web:\n    run: x\n    ready: { http: \"http:\u{feff}//x/\" }\n");
    assert!(message.contains("a URL like"), "{message}");
}
