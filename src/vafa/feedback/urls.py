from django.urls import path

from vafa.feedback import staff_views, views

app_name = "feedback"

urlpatterns = [
    path("s/<str:signed>/", views.survey_page, name="survey"),
    path("r/<str:signed>/", views.review_page, name="review"),
    path("review-photos/<int:review_id>/", views.review_photo, name="review_photo"),
    path("staff/churn-factors/", staff_views.churn_factors, name="churn_factors"),
    path("staff/support/", staff_views.support_signals, name="support"),
]
