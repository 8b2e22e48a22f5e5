"""The deployment pieces: the SAM template and the packaging script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambda_proxy import lambda_function

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "lambda_proxy" / "template.yaml"
PACKAGE = ROOT / "script" / "package-lambda"


class _Intrinsic:
    """A CloudFormation short-form intrinsic function (!Ref, !Sub, !GetAtt, ...)."""

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Intrinsic) and (self.name, self.value) == (
            other.name,
            other.value,
        )

    def __hash__(self) -> int:
        return hash((self.name, repr(self.value)))

    def __repr__(self) -> str:
        return f"!{self.name} {self.value!r}"


# A SafeLoader subclass that also understands the CloudFormation intrinsic function tags.
_CloudFormationLoader: Any = type("_CloudFormationLoader", (yaml.SafeLoader,), {})


def _construct_intrinsic(loader: Any, tag_suffix: str, node: Any) -> _Intrinsic:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return _Intrinsic(tag_suffix, value)


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(encoding="utf-8"), _CloudFormationLoader)
    return loaded


def _of_type(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    (match,) = [
        (name, resource["Properties"])
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    ]
    return match


def test_function_properties(template: dict[str, Any]) -> None:
    _, function = _of_type(template, "AWS::Serverless::Function")
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["MemorySize"] == 128
    assert function["Timeout"] == 8
    module, handler = function["Handler"].split(".")
    assert module == Path(lambda_function.__file__).stem
    assert callable(getattr(lambda_function, handler))
    assert (TEMPLATE.parent / function["CodeUri"] / f"{module}.py").is_file()
    variables = function["Environment"]["Variables"]
    assert variables["HA_URL"] == _Intrinsic("Ref", "HaUrl")
    assert "HaUrl" in template["Parameters"]


def test_alexa_trigger_bound_to_the_skill(template: dict[str, Any]) -> None:
    function_name, _ = _of_type(template, "AWS::Serverless::Function")
    _, permission = _of_type(template, "AWS::Lambda::Permission")
    assert permission["Principal"] == "alexa-connectedhome.amazon.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["EventSourceToken"] == _Intrinsic("Ref", "AlexaSkillId")
    assert permission["FunctionName"] == _Intrinsic("GetAtt", [function_name, "Arn"])
    assert template["Parameters"]["AlexaSkillId"]["Type"] == "String"


def test_log_group_with_retention(template: dict[str, Any]) -> None:
    log_group_name, log_group = _of_type(template, "AWS::Logs::LogGroup")
    _, function = _of_type(template, "AWS::Serverless::Function")
    assert log_group["RetentionInDays"] == _Intrinsic("Ref", "LogRetentionDays")
    assert (
        template["Parameters"]["LogRetentionDays"]["Default"]
        in (template["Parameters"]["LogRetentionDays"]["AllowedValues"])
    )
    assert function["LoggingConfig"]["LogGroup"] == _Intrinsic("Ref", log_group_name)


def test_parameter_patterns(template: dict[str, Any]) -> None:
    """The template refuses obviously wrong parameters before anything is created."""
    import re

    params = template["Parameters"]
    skill = re.compile(params["AlexaSkillId"]["AllowedPattern"])
    assert skill.fullmatch("amzn1.ask.skill.0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    assert not skill.fullmatch("arn:aws:lambda:eu-west-1:1:function:x")
    url = re.compile(params["HaUrl"]["AllowedPattern"])
    assert url.fullmatch("https://ha.example.com")
    assert url.fullmatch("https://example.com:8443/ha/")
    assert not url.fullmatch("ha.example.com")
    assert not url.fullmatch("https://ha.example.com/?x=1")


def test_package_script(tmp_path: Path) -> None:
    """The zip holds exactly lambda_function.py at its root, and is reproducible."""
    outputs = [tmp_path / "a" / "lambda.zip", tmp_path / "b" / "lambda.zip"]
    for output in outputs:
        subprocess.run(
            [sys.executable, str(PACKAGE), "--output", str(output)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    with zipfile.ZipFile(outputs[0]) as archive:
        assert archive.namelist() == ["lambda_function.py"]
        assert archive.read("lambda_function.py") == Path(lambda_function.__file__).read_bytes()
        assert archive.getinfo("lambda_function.py").external_attr >> 16 == 0o100644
    assert outputs[0].read_bytes() == outputs[1].read_bytes()


def test_template_passes_cfn_lint() -> None:
    """cfn-lint (AWS's CloudFormation linter, with the SAM transform) finds no error:
    resource types, property names and values, references and intrinsic functions."""
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    done = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
