"""Transfer to detection and instance segmentation (``python -m seed_solo.detect``).

- :mod:`backbones`: the student's feature stages under an FPN, torchvision's Faster / Mask R-CNN.
- :mod:`data`: VOC (XML, image sets) and COCO (JSON, polygons and RLE) from disk, checked.
- :mod:`evaluate`: predictions; COCO's AP (pycocotools) and VOC2007's 11-point AP.
- :mod:`train`: the Lightning module and detectron2's solver (warm-up, steps).
- :mod:`inits`: where a detector starts: a student, supervised ImageNet weights, random.
- :mod:`detectron2`: a ResNet student in the pickle detectron2 loads (MoCo's layout).
"""
