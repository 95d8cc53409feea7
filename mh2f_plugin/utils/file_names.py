"""File names made from labels that users choose."""
import re


def safe_file_name(label):
    """``label`` as one file name: no path separators or other signs, no leading dot (a label ``..``
    would name the folder above)."""
    return re.sub(r'^\.', '_', re.sub(r'[^\w.-]', '_', label))
