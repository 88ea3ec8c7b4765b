from conftest import run


def test_import_gen_does_not_import_tensorflow():
  code = ("import sys, gen, gen.trainer, gen.families.gan, gen.sample; "
          "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules))")
  result = run(["-c", code])
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "[]"
