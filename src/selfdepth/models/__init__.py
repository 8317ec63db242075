"""Networks: the encoders (ResNet18, EfficientNet-Lite), the depth U-Net and the pose network."""

from selfdepth.models.depth import DepthDecoder, DepthNet, check_input_size
from selfdepth.models.efficientnet import EfficientNetLiteEncoder
from selfdepth.models.encoder import ENCODERS, ResnetEncoder, load_imagenet_weights, make_encoder
from selfdepth.models.pose import PoseDecoder, PoseNet

__all__ = ["ENCODERS", "DepthDecoder", "DepthNet", "EfficientNetLiteEncoder", "PoseDecoder", "PoseNet", "ResnetEncoder",
           "check_input_size", "load_imagenet_weights", "make_encoder"]
