"""``lffnet <command> [flags]``: every command of the package behind one name, beside the single-purpose names
(``lffnet-train``, ``lffnet-test``, ``lffnet-inference``) and the ``scripts/`` files. ``lffnet <command> --help``
prints that command's own flags.
"""

import importlib
import sys
from collections.abc import Sequence
from typing import Optional

__all__ = ['COMMANDS', 'main']

# command -> (module, what it does); each module's main(argv) parses its own flags.
COMMANDS = {
    'train': ('lffnet_arch.train', 'train with a BasicSR options file (-opt)'),
    'test': ('lffnet_arch.test', 'test with a BasicSR options file (-opt)'),
    'infer': ('lffnet_arch.commands.inference', 'fuse your own brackets into .hdr, .exr and a preview'),
    'simulate': ('lffnet_arch.commands.simulate_brackets', 'write simulated brackets from radiance maps'),
    'demo-set': ('lffnet_arch.commands.generate_demo_set', 'write the embedded demo set'),
    'demo-radiance': ('lffnet_arch.commands.make_demo_radiance', "crop the demo's radiance maps from panoramas"),
    'extract': ('lffnet_arch.commands.extract_subimages', 'cut scenes into training patches'),
    'lmdb': ('lffnet_arch.commands.create_lmdb', 'pack scenes into an LMDB'),
    'export-onnx': ('lffnet_arch.commands.export_onnx', 'export a checkpoint to ONNX'),
    'fold': ('lffnet_arch.commands.fold_doconv', "fold a checkpoint's DO-Conv layers into plain convolutions"),
    'convert-ahdrnet': ('lffnet_arch.commands.convert_ahdrnet', 'convert an official AHDRNet checkpoint'),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f'  {name:<{width}}  {text}' for name, (_, text) in COMMANDS.items()]
    return 'usage: lffnet <command> [flags]   (lffnet <command> --help for its flags)\n\ncommands:\n' + '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f'lffnet: unknown command {name!r}\n\n{usage()}', file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    sys.argv[0] = f'lffnet {name}'  # argparse's usage line names the subcommand
    status = module.main(rest)
    return status if isinstance(status, int) else 0


if __name__ == '__main__':
    sys.exit(main())
