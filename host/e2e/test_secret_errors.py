"""A config file's parse error never prints the file's text: a password file given as
`--config`, or a password written unquoted, stays out of stdout and stderr, while the
error still names the file, the line and (when it is a setting) the key."""
import os
import subprocess

SECRET = "S3cr3t-pa55-Kq9"


def config(binary, cfg):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_MQTT_")}
    return subprocess.run([str(binary), "config", "--config", str(cfg)], capture_output=True, text=True,
                          timeout=30, env=env)


def assert_refused_without_the_secret(r, cfg, line):
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    for part in (SECRET, SECRET[:6], SECRET[-6:]):
        assert part not in out, out
    err = r.stderr.strip().splitlines()[-1]
    assert str(cfg) in err and f"line {line}" in err, err


def test_a_password_file_passed_as_config_is_not_printed(binary, tmp_path):
    for name, text in [("bare", SECRET + "\n"), ("spaced", f"my {SECRET} phrase\n"),
                       ("quoted", f'"{SECRET}\n'), ("twice", f"{SECRET} = 1\n{SECRET} = 2\n")]:
        pw = tmp_path / name
        pw.write_text(text)
        assert_refused_without_the_secret(config(binary, pw), pw, 2 if name == "twice" else 1)


def test_an_unquoted_password_is_not_printed(binary, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'username = "board"\npassword = {SECRET}\n')
    r = config(binary, cfg)
    assert_refused_without_the_secret(r, cfg, 2)
    assert "`password`" in r.stderr, r.stderr
    cfg.write_text(f'\n\nqos = {SECRET}\n')
    r = config(binary, cfg)
    assert_refused_without_the_secret(r, cfg, 3)
    assert "`qos`" in r.stderr, r.stderr
