from django.urls import path

from vafa.feedback import views

app_name = "feedback"

urlpatterns = [
    path("s/<str:signed>/", views.survey_page, name="survey"),
]
