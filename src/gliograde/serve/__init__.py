"""``gliograde serve``: a DICOM node a PACS routes MR studies to. It grades each study as
``predict`` grades a DICOM folder and sends the DICOM SR back into the patient's study
(:mod:`~gliograde.serve.spool`, :mod:`~gliograde.serve.node`, :mod:`~gliograde.serve.worker`)."""
