"""Text helpers shared by the text experiments: spotting Chinese and cutting it into words with jieba."""
import logging
import re

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")  # CJK ideographs (Unified + Extension A + Compatibility)

_jieba = None


def jieba_cut(text: str) -> list[str]:
    """jieba's word segmentation, loaded (and its dictionary built) on first use, quietly."""
    global _jieba
    if _jieba is None:
        import jieba
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba.lcut(text)
