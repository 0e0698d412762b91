"""API: tokens, the current member, members (owners), audit log (owners)."""
from __future__ import annotations

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from mlplatform.api.serializers import InputSerializer
from mlplatform.api.base import BaseAPIView
from mlplatform.client_address import client_address

from . import selectors, services
from .models import Role


class MemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(help_text="an email address, or empty when none was given")
    role = serializers.CharField(source="membership.role")
    is_active = serializers.BooleanField()
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)


class TokenApi(BaseAPIView):
    """Exchange a member's username and password for an API token bound to this organization."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class TokenInput(InputSerializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, style={"input_type": "password"})

    @extend_schema(request=TokenInput, responses={200: inline_serializer("TokenOutput", {"token": serializers.CharField(), "organization": serializers.CharField(), "role": serializers.CharField()})},
                   auth=[])
    def post(self, request):
        data = self.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_sign_in(request=request, ip_address=client_address(request), **data.validated_data)
        token = services.token_for(user)
        return Response({"token": token.key, "organization": request.tenant.slug, "role": user.membership.role})


class MeApi(BaseAPIView):
    @extend_schema(responses={200: inline_serializer("MeOutput", {
        "user": MemberOutput(), "role": serializers.CharField(),
        "organization": inline_serializer("OrganizationOutput", {"name": serializers.CharField(), "slug": serializers.CharField()}),
    })})
    def get(self, request):
        org = request.tenant
        return Response({
            "user": MemberOutput(request.user).data,
            "role": self.role(),
            "organization": {"name": org.name, "slug": org.slug},
        })


class MemberListApi(BaseAPIView):
    read_role = "owner"
    required_role = "owner"

    class MemberListInput(InputSerializer):
        username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()],
                                         help_text="letters, digits and @ . + - _; compared without case")
        password = serializers.CharField(max_length=256, write_only=True)
        email = serializers.EmailField(required=False, default="")
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(responses={200: MemberOutput(many=True)})
    def get(self, request):
        return Response(MemberOutput(selectors.member_list(), many=True).data)

    @extend_schema(request=MemberListInput, responses={201: MemberOutput})
    def post(self, request):
        data = self.MemberListInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.member_create(actor=self.audit_actor(), **data.validated_data)
        return Response(MemberOutput(user).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(BaseAPIView):
    read_role = "owner"
    required_role = "owner"

    class MemberDetailInput(InputSerializer):
        role = serializers.ChoiceField(choices=Role.choices, required=False)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(responses={200: MemberOutput})
    def get(self, request, user_id: int):
        return Response(MemberOutput(get_object_or_404(selectors.member_list(), pk=user_id)).data)

    @extend_schema(request=MemberDetailInput, responses={200: MemberOutput})
    def patch(self, request, user_id: int):
        user = get_object_or_404(selectors.member_list(), pk=user_id)
        data = self.MemberDetailInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.member_update(actor=self.audit_actor(), user=user, **data.validated_data)
        return Response(MemberOutput(user).data)


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    object_repr = serializers.CharField()
    detail = serializers.JSONField()


class AuditEventListApi(BaseAPIView):
    read_role = "owner"

    @extend_schema(responses={200: AuditEventOutput(many=True)})
    def get(self, request):
        events = selectors.audit_event_list(action=request.query_params.get("action"), actor=request.query_params.get("actor"))[:500]
        return Response(AuditEventOutput(events, many=True).data)
