"""scripts/plot_response.py: a response written by inference plots beside the formula responses."""

import cv2
import numpy as np

from lffnet_arch.response import Response
from scripts.measure import response_curves


def test_responses_plot_and_bad_ones_are_refused(tmp_path, capsys):
    table = np.stack([np.linspace(0, 1, 64) ** g for g in (2.0, 2.2, 2.4)])
    Response(table).to_json(tmp_path / 'scene_response.json')
    out = tmp_path / 'curves.png'
    assert response_curves.main([str(tmp_path / 'scene_response.json'), 'gamma:2.2', '--output', str(out)]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] > image.shape[0]
    assert response_curves.main(['gamma:2.2', '--output', str(out)]) == 1  # no silent overwrite
    assert 'exists; pass --overwrite' in capsys.readouterr().err
    assert response_curves.main(['auto', '--output', str(tmp_path / 'a.png')]) == 1
    assert 'auto is not a curve' in capsys.readouterr().err
    assert response_curves.main(['gamma:0', '--output', str(tmp_path / 'b.png')]) == 1
