from django.urls import path

from vafa.insights import views

app_name = "insights"
urlpatterns = [
    path("report/", views.report, name="report"),
    path("summary.json", views.summary, name="summary"),
]
