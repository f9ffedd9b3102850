"""Many AWS accounts from one RoleDesk (issue 17): hub and spoke.

RoleDesk's own credentials belong to the hub account. Member accounts come from AWS
Organizations or from configuration (`registry`); RoleDesk reaches each by assuming a spoke
role there (`credentials`, `hub`), and one account that cannot be reached never stops the
others. A cross-account role pair is a plan on the one operations engine (`pair`).
"""
