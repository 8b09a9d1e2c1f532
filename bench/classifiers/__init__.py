"""Networks used to evaluate generators: the paper's inlier/outlier CNN (``inlier_cnn``), scores read off it
(``outlier_scores``: % inliers, Table 5 F1) and the feature spaces for FID/KID/PRC (``features``)."""
